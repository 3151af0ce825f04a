#!/bin/bash
# A trained model behind debias serve, checked through real HTTP: usage examples/serve_check.sh CONFIG RUN_DIR [PORT]
source "$(dirname "$0")/../.venv/bin/activate"
export HF_HUB_OFFLINE=1
CONFIG=${1:?config}; RUN=${2:?run dir}; PORT=${3:-8123}
debias serve --config "$CONFIG" --run-dir "$RUN" --set serve.port=$PORT --set serve.auth_token_env=null > "$RUN/serve_check.log" 2>&1 &
PID=$!
for i in $(seq 1 120); do curl -sf localhost:$PORT/v1/model >/dev/null && break; sleep 2; done
curl -s localhost:$PORT/v1/model | python -c "import json,sys; d=json.load(sys.stdin); print({k:d[k] for k in ('class_names','score_class','decision_rule','threshold')})"
curl -s localhost:$PORT/v1/classify -H 'content-type: application/json' -d '{"texts": ["a warm, funny film about a muslim family", "a dull and lifeless film", "the gay couple at the centre is wonderful", "the old man in this film is tedious"]}'
echo
curl -s localhost:$PORT/v1/counterfactual -H 'content-type: application/json' -d '{"text": "the woman who directed it has made a charming film"}' | python -c "import json,sys; d=json.load(sys.stdin); print('score', round(d['score'],3), 'label', d['label'], 'variants', len(d['variants']), 'max_gap', round(d['max_gap'],4), 'flips', d['label_flips'])"
sleep 2
curl -s localhost:$PORT/v1/monitor | python -c "import json,sys; d=json.load(sys.stdin); print('texts', d['texts_total'], 'classes', d['classes'], 'decisions', d['decisions_total'], 'by_group', d['class_counts']['by_group'])"
kill $PID; wait $PID 2>/dev/null
