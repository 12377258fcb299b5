#!/bin/sh
# Renders `ouro validate --html` in headless Chromium and checks the screenshot is a real page:
# the trained fixture converted to Q4_0 and Q8_0, validated in one call against its reference.
#
#   ./Scripts/render_report.sh [out.png]      (needs Debian's chromium: apt-get install chromium)
set -eu
cd "$(dirname "$0")/.."
out=${1:-report.png}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
swift build --product ouro >/dev/null
ouro=.build/debug/ouro
for type in q4_0 q8_0; do $ouro convert Tests/Fixtures/ouro-trained-s -o "$work/$type.gguf" --type $type >/dev/null 2>&1; done
(cd "$work" && "$OLDPWD/$ouro" validate q4_0.gguf q8_0.gguf \
    --reference "$OLDPWD/Tests/Fixtures/ouro-trained-s/reference.safetensors" --html report.html >/dev/null)
chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1140,1000 \
    --screenshot="$work/report.png" "file://$work/report.html" >/dev/null 2>&1
python3 - "$work/report.png" <<'PY'
import struct, sys, zlib
data = open(sys.argv[1], "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
pos, idat = 8, b""
while pos < len(data):
    n, kind = struct.unpack(">I4s", data[pos:pos + 8]); body = data[pos + 8:pos + 8 + n]; pos += 12 + n
    if kind == b"IHDR": w, h, depth, ctype = struct.unpack(">IIBB", body[:10])
    if kind == b"IDAT": idat += body
assert depth == 8 and ctype in (2, 6), f"unexpected PNG type {depth}/{ctype}"
bpp = 3 if ctype == 2 else 4
raw, stride, rows, prev = zlib.decompress(idat), w * bpp, [], bytearray(w * bpp)
for y in range(h):
    f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
    for i in range(stride):
        a = line[i - bpp] if i >= bpp else 0; b = prev[i]; c = prev[i - bpp] if i >= bpp else 0
        if f == 1: line[i] = (line[i] + a) & 255
        elif f == 2: line[i] = (line[i] + b) & 255
        elif f == 3: line[i] = (line[i] + (a + b) // 2) & 255
        elif f == 4:
            p = a + b - c; pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    rows.append(bytes(line)); prev = line
pixels = [r[i:i + 3] for r in rows for i in range(0, stride, bpp)]
background = max(set(pixels[::97]), key=pixels[::97].count)
ink = sum(p != background for p in pixels) / len(pixels)
colours = {p for p in pixels[::7]}
blue = sum(p[2] > 180 and p[0] < 80 for p in pixels) / len(pixels)     # the first file's colour (#2563eb)
print(f"{w}x{h}, {len(colours)} colours, {ink:.1%} non-background, {blue:.2%} chart blue")
assert (w, h) == (1140, 1000), "wrong size"
assert ink > 0.15 and len(colours) > 50 and blue > 0.005, "the screenshot does not look like the report"
PY
cp "$work/report.png" "$out"
echo "OK: $out"
