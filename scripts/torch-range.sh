#!/usr/bin/env bash
# The torch floor is a promise: run a short gloo sweep under the oldest and the newest
# supported torch, each in its own venv cached outside the clone (a second run reuses it).
#
#   scripts/torch-range.sh 2.7.1 2.15.0     (make test-torch-range)
#
# Each venv gets the registry's torch==VERSION and commbench's other dependencies, read
# from pyproject.toml; commbench itself runs from this clone (PYTHONPATH), so the cache
# never holds a stale copy of it. CACHE (default ~/.cache/commbench-ci) holds the venvs;
# PIP_FLAGS and PIP_CONFIG_FILE say how pip reaches the registry.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE="${CACHE:-$HOME/.cache/commbench-ci}"
PYTHON="${PYTHON:-python3}"
read -r -a PIP_FLAGS <<< "${PIP_FLAGS:---cert /etc/ssl/certs/ca-certificates.crt}"
REPO="$PWD"

deps() {  # pyproject's dependencies but torch, one a line
    "$PYTHON" - <<'PY'
try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib
with open("pyproject.toml", "rb") as f:
    deps = tomllib.load(f)["project"]["dependencies"]
print("\n".join(d for d in deps if not d.startswith("torch")))
PY
}

for version in "$@"; do
    venv="$CACHE/torch-$version"
    stamp="$venv/.installed-$(deps | sha1sum | cut -c1-12)"
    if [ ! -e "$stamp" ]; then
        echo "torch-range: installing torch $version into $venv"
        test -x "$venv/bin/python" || "$PYTHON" -m venv "$venv"
        mapfile -t others < <(deps)
        # the registry's builds, not a machine-wide pip config's local ones or its caps
        PIP_CONFIG_FILE="${PIP_CONFIG_FILE:-/dev/null}" "$venv/bin/pip" install -q "${PIP_FLAGS[@]}" \
            "torch==$version" "${others[@]}"
        touch "$stamp"
    fi
    out="$(mktemp -d "${TMPDIR:-/tmp}/commbench-torch-$version.XXXXXX")"
    echo "torch-range: torch $version: gloo sweep, 2 ranks, every collective"
    # a hang fails the check instead of blocking CI
    (cd "$out" && PYTHONPATH="$REPO" timeout 300 "$venv/bin/python" -m commbench sweep --nproc 2 \
        --config "$REPO/configs/torch-range.toml" --out "$out/run" --label "torch-$version")
    PYTHONPATH="$REPO" "$venv/bin/python" "$REPO/scripts/check_torch_range.py" "$out/run" "$version"
    rm -rf "$out"
done
