#!/usr/bin/env bash
# Debian packages the test suite needs: Chromium for the browser tests, a Java runtime
# for the Spark engine, the Pango libraries WeasyPrint renders PDFs with, and fonts
# for the scripts operations post in.
set -euo pipefail
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
# pyspark 4 needs Java 17 or newer (Debian 12's default-jre-headless is 17).
java_major() {
  java -XshowSettings:properties -version 2>&1 |
    awk -F'= ' '/java.specification.version/ {split($2, v, "."); print v[1]}'
}
{ command -v java >/dev/null 2>&1 && [ "$(java_major)" -ge 17 ] 2>/dev/null; } ||
  need+=(default-jre-headless)
ldconfig -p 2>/dev/null | grep -q libpango-1.0 || need+=(libpango-1.0-0 libpangoft2-1.0-0)
fc-list >/dev/null 2>&1 && [ -n "$(fc-list 2>/dev/null | head -n 1)" ] || need+=(fonts-dejavu-core fontconfig)
# Operations post in Chinese, Japanese and Korean: reports and PDFs must render them.
[ -n "$(fc-list :lang=zh 2>/dev/null | head -n 1)" ] || need+=(fonts-noto-cjk)
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
echo "Installing Debian packages: ${need[*]}"
sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  sudo_cmd=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
