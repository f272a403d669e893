#!/usr/bin/env bash
# Spelling-correction data (Bahdanau et al. 2017; SeaRNN Section 4) from any English text file.
#   TEXT=path/to/english.txt OUT=data/spelling-p0.3 P=0.3 MAX_LEN=10 COPIES=10 bash prepare.sh
# Writes $OUT/text (symbol files), $OUT/bin (+ $OUT/bin/noise1.. : one noisy training copy per
# epoch, cycled) and $OUT/data-path.txt, the colon-separated data argument for fairseq-train.
set -euo pipefail
TEXT=${TEXT:?set TEXT to an English text file, e.g. ../shared/data/spelling/tinyshakespeare.txt}
OUT=${OUT:-data/spelling-p${P:-0.3}-T${MAX_LEN:-10}}
python -m fairseq_searnn.data.spelling --text "$TEXT" --out "$OUT" \
    --p "${P:-0.3}" --max-len "${MAX_LEN:-10}" --copies "${COPIES:-10}" --seed "${SEED:-1}" \
    --valid "${VALID:-2000}" --test "${TEST:-2000}" --max-lines "${MAX_LINES:-0}"
