"""Search components of SeaRNN: roll-in, candidates, reference policies, roll-outs, losses."""
