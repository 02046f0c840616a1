/**
 * Lossless PNG shrinking for figures embedded in notebooks (no dependency: node:zlib only).
 * Chromium writes 8-bit RGBA with fast compression. Here the pixels are decoded and written
 * again as the smallest exact equivalent: an indexed palette when the image has at most 256
 * colours, else RGB when every pixel is opaque (else RGBA); each row gets the filter with the
 * smallest sum of absolute values (the usual heuristic), deflated at level 9. The pixels are
 * unchanged. Anything other than non-interlaced 8-bit RGBA/RGB is returned as it came.
 */
import { deflateSync, inflateSync } from 'node:zlib';

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(buf: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < buf.length; i++) c = CRC_TABLE[(c ^ buf[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Uint8Array): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0);
  return Buffer.concat([head, data, crc]);
}

export interface DecodedPng {
  width: number;
  height: number;
  /** RGBA, 4 bytes per pixel, row-major */
  rgba: Uint8Array;
}

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const pa = Math.abs(p - a);
  const pb = Math.abs(p - b);
  const pc = Math.abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/** Decode a non-interlaced 8-bit RGBA, RGB or palette PNG; null for anything else. */
export function decodePng(png: Uint8Array): DecodedPng | null {
  const buf = Buffer.from(png.buffer, png.byteOffset, png.byteLength);
  if (buf.length < 8 || !buf.subarray(0, 8).equals(SIGNATURE)) return null;
  let width = 0, height = 0, colorType = -1;
  let plte: Buffer | null = null;
  let trns: Buffer | null = null;
  const idat: Buffer[] = [];
  for (let i = 8; i + 8 <= buf.length; ) {
    const n = buf.readUInt32BE(i);
    const type = buf.toString('latin1', i + 4, i + 8);
    const data = buf.subarray(i + 8, i + 8 + n);
    if (type === 'IHDR') {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      const depth = data[8], interlace = data[12];
      colorType = data[9];
      if (depth !== 8 || interlace !== 0 || ![2, 3, 6].includes(colorType)) return null;
    } else if (type === 'IDAT') idat.push(data);
    else if (type === 'PLTE') plte = data;
    else if (type === 'tRNS') trns = data;
    else if (type === 'IEND') break;
    i += 12 + n;
  }
  if (!width || !height || colorType < 0) return null;
  if (colorType === 3 && !plte) return null;
  const bpp = colorType === 6 ? 4 : colorType === 2 ? 3 : 1;
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * bpp;
  if (raw.length < height * (stride + 1)) return null;
  const px = new Uint8Array(height * stride);
  for (let y = 0; y < height; y++) {
    const f = raw[y * (stride + 1)];
    const src = y * (stride + 1) + 1;
    const row = y * stride;
    for (let x = 0; x < stride; x++) {
      const a = x >= bpp ? px[row + x - bpp] : 0;
      const b = y > 0 ? px[row - stride + x] : 0;
      const c = x >= bpp && y > 0 ? px[row - stride + x - bpp] : 0;
      const v = raw[src + x];
      px[row + x] = (f === 0 ? v : f === 1 ? v + a : f === 2 ? v + b : f === 3 ? v + ((a + b) >> 1) : v + paeth(a, b, c)) & 0xff;
    }
  }
  if (bpp === 4) return { width, height, rgba: px };
  const rgba = new Uint8Array(width * height * 4);
  if (bpp === 1) {
    for (let i = 0; i < px.length; i++) {
      const k = px[i];
      rgba[4 * i] = plte![3 * k];
      rgba[4 * i + 1] = plte![3 * k + 1];
      rgba[4 * i + 2] = plte![3 * k + 2];
      rgba[4 * i + 3] = trns && k < trns.length ? trns[k] : 255;
    }
    return { width, height, rgba };
  }
  for (let i = 0, j = 0; i < px.length; i += 3, j += 4) {
    rgba[j] = px[i];
    rgba[j + 1] = px[i + 1];
    rgba[j + 2] = px[i + 2];
    rgba[j + 3] = 255;
  }
  return { width, height, rgba };
}

/** Filter rows (per-row choice of the 5 PNG filters by minimum sum of |signed byte|) and deflate. */
function filterAndDeflate(px: Uint8Array, width: number, height: number, bpp: number): Buffer {
  const stride = width * bpp;
  const out = Buffer.alloc(height * (stride + 1));
  const cand = Array.from({ length: 5 }, () => new Uint8Array(stride));
  for (let y = 0; y < height; y++) {
    const row = y * stride;
    for (let x = 0; x < stride; x++) {
      const v = px[row + x];
      const a = x >= bpp ? px[row + x - bpp] : 0;
      const b = y > 0 ? px[row - stride + x] : 0;
      const c = x >= bpp && y > 0 ? px[row - stride + x - bpp] : 0;
      cand[0][x] = v;
      cand[1][x] = (v - a) & 0xff;
      cand[2][x] = (v - b) & 0xff;
      cand[3][x] = (v - ((a + b) >> 1)) & 0xff;
      cand[4][x] = (v - paeth(a, b, c)) & 0xff;
    }
    // palette rows: no filter is usually best (filters on indices are meaningless)
    let best = 0;
    if (bpp > 1) {
      let bestSum = Infinity;
      for (let f = 0; f < 5; f++) {
        let s = 0;
        const r = cand[f];
        for (let x = 0; x < stride; x++) s += r[x] < 128 ? r[x] : 256 - r[x];
        if (s < bestSum) {
          bestSum = s;
          best = f;
        }
      }
    }
    out[y * (stride + 1)] = best;
    out.set(cand[best], y * (stride + 1) + 1);
  }
  return deflateSync(out, { level: 9 });
}

/** Encode RGBA pixels as the smallest exact PNG: palette (≤ 256 colours), RGB (opaque) or RGBA. */
export function encodePng(img: DecodedPng): Buffer {
  const { width, height, rgba } = img;
  const n = width * height;
  const view = new Uint32Array(rgba.buffer.slice(rgba.byteOffset, rgba.byteOffset + n * 4));
  let opaque = true;
  for (let i = 3; i < rgba.length; i += 4) if (rgba[i] !== 255) { opaque = false; break; }
  const index = new Map<number, number>();
  for (let i = 0; i < n && index.size <= 256; i++) if (!index.has(view[i])) index.set(view[i], index.size);
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  const parts: Buffer[] = [SIGNATURE];
  if (index.size <= 256) {
    ihdr[9] = 3;
    const idx = new Uint8Array(n);
    for (let i = 0; i < n; i++) idx[i] = index.get(view[i])!;
    const plte = Buffer.alloc(index.size * 3);
    const trns = Buffer.alloc(index.size);
    const seen = new Set<number>();
    for (let i = 0; i < n; i++) {
      const k = idx[i];
      if (seen.has(k)) continue;
      seen.add(k);
      plte[3 * k] = rgba[4 * i];
      plte[3 * k + 1] = rgba[4 * i + 1];
      plte[3 * k + 2] = rgba[4 * i + 2];
      trns[k] = rgba[4 * i + 3];
    }
    parts.push(chunk('IHDR', ihdr), chunk('PLTE', plte));
    if (!opaque) parts.push(chunk('tRNS', trns));
    parts.push(chunk('IDAT', filterAndDeflate(idx, width, height, 1)));
  } else if (opaque) {
    ihdr[9] = 2;
    const rgb = new Uint8Array(n * 3);
    for (let i = 0, j = 0; i < rgba.length; i += 4, j += 3) {
      rgb[j] = rgba[i];
      rgb[j + 1] = rgba[i + 1];
      rgb[j + 2] = rgba[i + 2];
    }
    parts.push(chunk('IHDR', ihdr), chunk('IDAT', filterAndDeflate(rgb, width, height, 3)));
  } else {
    ihdr[9] = 6;
    parts.push(chunk('IHDR', ihdr), chunk('IDAT', filterAndDeflate(rgba, width, height, 4)));
  }
  parts.push(chunk('IEND', new Uint8Array(0)));
  return Buffer.concat(parts);
}

/** The same image, losslessly smaller when possible; the input itself when it cannot be improved. */
export function shrinkPng(png: Uint8Array): Buffer {
  const input = Buffer.from(png.buffer, png.byteOffset, png.byteLength);
  const img = decodePng(input);
  if (!img) return input;
  const out = encodePng(img);
  return out.length < input.length ? out : input;
}
