#!/usr/bin/env bash
# Installs Mesa's lavapipe (a CPU Vulkan driver) from Debian's bookworm-backports on Debian 12, so
# Dawn (the `webgpu` package) can run the WebGPU backends without a GPU. Debian 12's own Mesa 22 is
# too old for Dawn ("shaderUniform*ArrayDynamicIndexing required"), hence the backports suite (Mesa 25).
# Run as root; safe to run again. Afterwards:
#   export VK_ICD_FILENAMES=/usr/share/vulkan/icd.d/lvp_icd.json   (the webgpu backends set it when unset)
set -euo pipefail
if [ "$(id -u)" -ne 0 ]; then echo "install-vulkan.sh: run as root (sudo bash scripts/install-vulkan.sh)" >&2; exit 1; fi
icd=/usr/share/vulkan/icd.d/lvp_icd.json
src=/etc/apt/sources.list.d/debian.sources
# Debian 12's own Mesa 22 also ships lvp_icd.json, but Dawn refuses it: require Mesa >= 24.
ver=$(dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null || true)
if [ -f "$icd" ] && [ "${ver%%.*}" -ge 24 ] 2>/dev/null; then echo "lavapipe (Mesa $ver) already installed: $icd"; exit 0; fi
if [ ! -f "$src" ]; then echo "install-vulkan.sh: $src not found; this script expects a Debian 12 (bookworm) machine" >&2; exit 1; fi
# Add bookworm-backports to the Suites: line of the first stanza only (the main archive), once.
if ! grep -q 'bookworm-backports' "$src"; then
  awk 'BEGIN{done=0} /^Suites:/ && !done {print $0 " bookworm-backports"; done=1; next} {print}' "$src" > "$src.tmp"
  mv "$src.tmp" "$src"
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y -t bookworm-backports mesa-vulkan-drivers
[ -f "$icd" ] || { echo "install-vulkan.sh: $icd missing after install" >&2; exit 1; }
echo "lavapipe installed: export VK_ICD_FILENAMES=$icd"
