#!/usr/bin/env bash
# Translation recipes (IWSLT14 / Multi30k de-en) on data made by prepare_iwslt14.py or
# prepare_multi30k.py. Pick with environment variables:
#   PREP=data/iwslt14      prepared directory (fairseq data in $PREP/bin)
#   METHOD=mle             mle | searnn | searnn-cheap | dss | ss (hard scheduled sampling) |
#                          risk (sequence-level risk over RISK_SIZE=16 beam candidates,
#                          RISK_CANDIDATES=beam|sample; MLE_WEIGHT, LABEL_SMOOTHING: its token
#                          term, criterion defaults 0.3 and 0.1 when unset)
#   ARCH=lstm              lstm (bidirectional encoder, 256 units: the paper's GRU 256) |
#                          transformer (small: 3+3 layers, 256 dims, 4 heads)
#   DROPOUT=0              0 or 0.3 (the paper reports both)
#   MAX_UPDATE=50000  MAX_TOKENS=  BATCH=64  SAVE=checkpoints/$METHOD-$ARCH-d$DROPOUT
#   TASK=searnn_translation  (validation BLEU `searnn_bleu` selects checkpoint_best.pt);
#   TASK=translation works as well (plain fairseq task, best = lowest validation loss).
#   LR=1e-3                Adam's step
#   LR_SCHEDULE=polynomial polynomial (decay to 1e-5 over MAX_UPDATE updates) | plateau (halve
#                          after every epoch whose validation BLEU does not improve; WARMUP
#                          updates of linear warm-up first, default 0) | fixed
#   LABEL_SMOOTHING=0      > 0: token-level losses label-smoothed (mle, dss, ss:
#                          label_smoothed_cross_entropy; searnn: its token term)
#   MLE_WEIGHT=0           searnn*: (1 - w) SeaRNN loss + w token-level loss
# Extra arguments are passed to fairseq-train. Score with examples/nmt/evaluate.py (--beam 1
# greedy, --beam 5 beam).
set -euo pipefail
PREP=${PREP:?set PREP to a directory made by prepare_iwslt14.py or prepare_multi30k.py}
METHOD=${METHOD:-mle}
ARCH=${ARCH:-lstm}
DROPOUT=${DROPOUT:-0}
TASK=${TASK:-searnn_translation}
MAX_UPDATE=${MAX_UPDATE:-50000}
SAVE=${SAVE:-checkpoints/$METHOD-$ARCH-d$DROPOUT}
SRC=$(python -c "import json,sys; print(json.load(open(sys.argv[1]))['src'])" "$PREP/prep.json")
TGT=$(python -c "import json,sys; print(json.load(open(sys.argv[1]))['tgt'])" "$PREP/prep.json")
BPE=$(python -c "import json,sys; print(json.load(open(sys.argv[1]))['bpe'])" "$PREP/prep.json")

case "$ARCH" in
  lstm) MODEL=(--encoder-bidirectional --encoder-layers 1 --decoder-layers 1
        --encoder-embed-dim 256 --encoder-hidden-size 256 --decoder-embed-dim 256
        --decoder-hidden-size 256 --decoder-out-embed-dim 256) ;;
  transformer) MODEL=(--encoder-layers 3 --decoder-layers 3 --encoder-embed-dim 256
        --decoder-embed-dim 256 --encoder-ffn-embed-dim 1024 --decoder-ffn-embed-dim 1024
        --encoder-attention-heads 4 --decoder-attention-heads 4 --share-all-embeddings) ;;
  *) echo "unknown ARCH=$ARCH" >&2; exit 1 ;;
esac

# SeaRNN, paper's NMT settings (Section 6, Appendix C.2): reference roll-in, mixed roll-out,
# sKL with alpha 200, top-k 15 tokens + the reference tokens within +-5 positions, sentence
# BLEU cost with the authors' smoothing (COST=bleu: sacreBLEU's BLEU+1), best-suffix reference
# policy selected by BLEU-1.
SEARNN=(--criterion searnn_skl --searnn-cost "${COST:-bleu-smooth-all}" --rollin reference
        --rollout mixed
        --searnn-alpha 200 --searnn-token-sampling topk-neighbors
        --searnn-reference best-suffix --searnn-reference-cost bleu1
        --rollout-max-len-a 1.5 --rollout-max-len-b 10)
SEARNN+=(--searnn-mle-weight "${MLE_WEIGHT:-0}"
         --searnn-mle-label-smoothing "${LABEL_SMOOTHING:-0}")
TOKEN=(--criterion cross_entropy)
if [ "${LABEL_SMOOTHING:-0}" != 0 ]; then
  TOKEN=(--criterion label_smoothed_cross_entropy --label-smoothing "$LABEL_SMOOTHING")
fi
NET=$ARCH
case "$METHOD" in
  mle) CRIT=("${TOKEN[@]}") ;;
  searnn) CRIT=("${SEARNN[@]}" --searnn-tokens "${TOKENS:-15}"
        --searnn-neighbors "${NEIGHBORS:-5}" --searnn-cells "${CELLS:-0}") ;;
  # CPU-sized: a few cells per sentence, fewer tokens, focused roll-outs (m learned steps,
  # then the reference policy).
  searnn-cheap) CRIT=("${SEARNN[@]}" --searnn-tokens "${TOKENS:-5}"
        --searnn-neighbors "${NEIGHBORS:-2}" --searnn-cells "${CELLS:-4}"
        --rollout focused --rollout-focused-steps "${FOCUSED:-2}") ;;
  # Differentiable scheduled sampling (Goyal et al. 2017): soft argmax feed, inverse-sigmoid
  # decay of the gold-token probability.
  dss) NET=dss_$ARCH; CRIT=("${TOKEN[@]}" --ss-feed "${FEED:-soft-greedy}"
        --ss-alpha "${SS_ALPHA:-1}" --ss-decay-k "${DECAY_K:-2000}") ;;
  # Hard scheduled sampling (Bengio et al. 2015): the previous argmax is fed.
  ss) NET=dss_$ARCH; CRIT=("${TOKEN[@]}" --ss-feed hard-greedy
        --ss-decay-k "${DECAY_K:-2000}") ;;
  # Sequence-level risk (Edunov et al. 2018) over candidates of the current model.
  risk) CRIT=(--criterion sequence_risk --risk-candidates "${RISK_CANDIDATES:-beam}"
        --risk-size "${RISK_SIZE:-16}" --risk-cost "${COST:-bleu}"
        --risk-mle-weight "${MLE_WEIGHT:-0.3}"
        --risk-label-smoothing "${LABEL_SMOOTHING:-0.1}") ;;
  *) echo "unknown METHOD=$METHOD" >&2; exit 1 ;;
esac

VALID=()
if [ "$TASK" = searnn_translation ]; then
  VALID=(--eval-searnn-cost bleu --eval-searnn-remove-bpe "$([ "$BPE" = sentencepiece ] \
         && echo sentencepiece || echo '@@ ')" --best-checkpoint-metric searnn_bleu
         --maximize-best-checkpoint-metric
         --eval-searnn-args '{"beam": 1, "max_len_a": 1.2, "max_len_b": 10}')
fi
case "${LR_SCHEDULE:-polynomial}" in
  polynomial) SCHEDULE=(--lr-scheduler polynomial_decay --end-learning-rate 1e-5
        --total-num-update "$MAX_UPDATE") ;;
  plateau) SCHEDULE=(--lr-scheduler reduce_lr_on_plateau --lr-shrink 0.5 --lr-patience 0
        --warmup-updates "${WARMUP:-0}") ;;
  fixed) SCHEDULE=(--lr-scheduler fixed) ;;
  *) echo "unknown LR_SCHEDULE=$LR_SCHEDULE" >&2; exit 1 ;;
esac
BATCH_ARGS=(--batch-size "${BATCH:-64}")
[ -n "${MAX_TOKENS:-}" ] && BATCH_ARGS+=(--max-tokens "$MAX_TOKENS")

fairseq-train "$PREP/bin" --user-dir "$(fairseq-searnn-user-dir)" --task "$TASK" \
    --source-lang "$SRC" --target-lang "$TGT" --arch "$NET" "${MODEL[@]}" \
    --dropout "$DROPOUT" --optimizer adam --lr "${LR:-1e-3}" "${SCHEDULE[@]}" \
    --max-update "$MAX_UPDATE" "${BATCH_ARGS[@]}" --num-workers 0 --seed "${SEED:-1}" \
    --required-batch-size-multiple 1 \
    --save-dir "$SAVE" --no-epoch-checkpoints --keep-last-epochs 1 \
    --log-format simple --log-interval 50 \
    "${CRIT[@]}" "${VALID[@]}" "$@"
