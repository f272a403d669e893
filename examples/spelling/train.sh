#!/usr/bin/env bash
# Spelling correction: the paper's model (attention encoder-decoder, 100 units; fairseq's LSTM
# with a bidirectional encoder stands in for the GRU), Adam 1e-3, batch 128, gradients clipped
# at norm 5 (the authors' code), edit cost.
#   DATA=data/spelling-p0.3-T10 METHOD=mle|searnn_kl|searnn_ll|searnn_skl|searnn_sll \
#   SAVE=checkpoints/spelling-mle MAX_UPDATE=20000 bash train.sh [extra fairseq-train args]
# Validation logs searnn_edit (exact corpus edit error of greedy decoding) with the
# searnn_translation task; TASK=translation works too (then the criterion's greedy_cost only).
set -euo pipefail
DATA=${DATA:?set DATA to a directory made by prepare.sh}
METHOD=${METHOD:-mle}
TASK=${TASK:-searnn_translation}
SAVE=${SAVE:-checkpoints/spelling-$METHOD}
USER_DIR=$(fairseq-searnn-user-dir)
case "$METHOD" in
  mle) CRIT=(--criterion cross_entropy) ;;
  searnn_ll|searnn_kl) CRIT=(--criterion "$METHOD" --searnn-cost edit
        --rollin "${ROLLIN:-learned}" --rollout "${ROLLOUT:-mixed}"
        ${ALPHA:+--searnn-alpha "$ALPHA"} --rollout-max-len-a 1 --rollout-max-len-b 2) ;;
  searnn_sll|searnn_skl) CRIT=(--criterion "$METHOD" --searnn-cost edit
        --rollin "${ROLLIN:-learned}" --rollout "${ROLLOUT:-mixed}"
        --searnn-tokens "${TOKENS:-5}" --searnn-token-sampling "${SAMPLING:-biased}"
        ${ALPHA:+--searnn-alpha "$ALPHA"} --rollout-max-len-a 1 --rollout-max-len-b 2) ;;
  *) echo "unknown METHOD=$METHOD" >&2; exit 1 ;;
esac
VALID=()
if [ "$TASK" = searnn_translation ]; then
  VALID=(--eval-searnn-cost edit --best-checkpoint-metric searnn_edit)
fi
fairseq-train "$(cat "$DATA/data-path.txt")" --user-dir "$USER_DIR" --task "$TASK" \
    --source-lang noisy --target-lang clean \
    --arch lstm --encoder-bidirectional \
    --encoder-embed-dim 100 --encoder-hidden-size 100 \
    --decoder-embed-dim 100 --decoder-hidden-size 100 --decoder-out-embed-dim 100 \
    --dropout 0 --optimizer adam --lr 1e-3 --clip-norm 5 --batch-size 128 \
    --max-update "${MAX_UPDATE:-20000}" --cpu --num-workers 0 --seed "${SEED:-1}" \
    --required-batch-size-multiple 1 \
    --save-dir "$SAVE" --no-epoch-checkpoints --log-format simple --log-interval 50 \
    "${CRIT[@]}" "${VALID[@]}" "$@"
