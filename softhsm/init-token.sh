#!/usr/bin/env bash
# Creates (once) a SoftHSM2 token for p11kms under DIR: DIR/softhsm2.conf, DIR/tokens/, and random PINs in
# DIR/pin and DIR/so-pin (mode 0600). Safe to run again: an existing token with the label is kept.
# Usage: softhsm/init-token.sh DIR [LABEL]      (prints the SOFTHSM2_CONF path)
set -euo pipefail
dir=$(mkdir -p "$1" && chmod 700 "$1" && cd "$1" && pwd)
label=${2:-p11kms}
here=$(cd "$(dirname "$0")" && pwd)
umask 077
mkdir -p "$dir/tokens"
conf="$dir/softhsm2.conf"
[ -f "$conf" ] || sed "s|@TOKENDIR@|$dir/tokens|" "$here/softhsm2.conf.template" > "$conf"
export SOFTHSM2_CONF="$conf"

# Token labels are unique per p11kms deployment; slot numbers are not stable, so look the label up.
if softhsm2-util --show-slots 2>/dev/null | grep -Eq "^[[:space:]]*Label:[[:space:]]+$label[[:space:]]*$"; then
  echo "$conf"
  exit 0
fi
[ -s "$dir/pin" ] || head -c 24 /dev/urandom | base64 | tr -d '/+=' | head -c 24 > "$dir/pin"
[ -s "$dir/so-pin" ] || head -c 24 /dev/urandom | base64 | tr -d '/+=' | head -c 24 > "$dir/so-pin"
chmod 600 "$dir/pin" "$dir/so-pin"
softhsm2-util --init-token --free --label "$label" --so-pin "$(cat "$dir/so-pin")" --pin "$(cat "$dir/pin")" >/dev/null
echo "$conf"
