#!/usr/bin/env bash
# Refresh the "// Measured here" line of each preset in assets/ from a run of the current build,
# so the numbers a preset's comment quotes are never typed by hand.
#
#   cargo build --release && scripts/preset-runs.sh [PRESET...]      (needs jq)
#
# Trained presets: `resviz train --config assets/P.ron --steps N --json`, N below; the line gives
# each model's final training loss (mean over the last 10 % of steps), training and test accuracy.
# The CIFAR-10 recipe presets cannot be trained here (no CIFAR-10 download on this machine): their
# line gives the speed of a training step on synthetic data of CIFAR's shape (`resviz bench`) and
# the time 64k steps would take at that speed.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=target/release/resviz
COMMIT=$(git rev-parse --short HEAD)

steps_for() {
    case $1 in
        bn-explosion) echo 150 ;;
        plain-depth) echo 400 ;;
        identity-mappings | activations) echo 100 ;;
        seed) echo 200 ;;
        *) echo 100 ;;
    esac
}

# Replace the preset's "// Measured here" line, or add one right before its "(" line.
put_line() {
    local file=$1 line=$2 tmp
    tmp=$(mktemp)
    awk -v l="$line" '
        /^\/\/ Measured here/ { next }
        /^\(/ && !done { print l; done = 1 }
        { print }' "$file" >"$tmp"
    mv "$tmp" "$file"
}

measure_recipe() {
    local file=$1 models batch total=0 m ips
    models=$(sed -n 's/^ *models: \[\(.*\)\],/\1/p' "$file" | tr -d ' "')
    batch=$(sed -n 's/^ *batch: \([0-9]*\),/\1/p' "$file")
    local parts=()
    for m in ${models//,/ }; do
        ips=$(nice -n 19 "$BIN" bench --models "$m" --dataset synthetic --batch "$batch" \
            --steps 5 --json | jq '.models[0].img_per_s')
        parts+=("$m $(printf '%.0f' "$ips") img/s")
        total=$(echo "$total + 64000 * $batch / $ips" | bc -l)
    done
    local joined
    joined=$(IFS=';'; echo "${parts[*]}" | sed 's/;/, /g')
    printf '// Measured here (%s, scripts/preset-runs.sh): %s at batch %s (synthetic data of CIFAR shape); 64k steps ≈ %.0f h (load average %s during the measurement).' \
        "$COMMIT" "$joined" "$batch" "$(echo "$total / 3600" | bc -l)" "$(cut -d' ' -f1 /proc/loadavg)"
}

measure_train() {
    local file=$1 n=$2
    nice -n 19 "$BIN" train --config "$file" --steps "$n" --json | jq -r --arg c "$COMMIT" --arg n "$n" '
        "// Measured here (\($c), scripts/preset-runs.sh, \($n) steps): " +
        ([.models[] | "\(.model) loss \(.final_train_loss * 100 | round / 100), train \(.final_train_acc * 100 | round) %, test \((.test_acc // 0) * 100 | round) %"]
         | join("; ")) + "."'
}

presets=("$@")
[ ${#presets[@]} -gt 0 ] || presets=(bn-explosion plain-depth identity-mappings activations seed he2015-cifar10 he2015-cifar10-110)
for p in "${presets[@]}"; do
    f=assets/$p.ron
    case $p in
        he2015-*) line=$(measure_recipe "$f") ;;
        *) line=$(measure_train "$f" "$(steps_for "$p")") ;;
    esac
    echo "$p: $line"
    put_line "$f" "$line"
done
