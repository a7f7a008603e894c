/**
 * Copies of small byte ranges carved out of shared slabs. A streamed answer's chunks are copied out of their
 * connection's read buffer (it is read into again), and each copy of its own is an `ArrayBuffer`: an allocation
 * outside the JavaScript heap, a backing store the garbage collector tracks and frees one by one. A stream event
 * is a few hundred bytes, so that is one such allocation per event, most of what copying costs. Here the copies
 * of all streams are laid end to end in one slab until it is full, and each chunk is a view of its part: one
 * `ArrayBuffer` for dozens of events. A slab is never written twice (a full one is left to its views and a new one
 * started), so a view stays valid as long as it is held, and the slab is freed with its last view.
 *
 * Whoever keeps chunks for long (a coalesced stream's copy for late joiners) keeps the slabs they are part of:
 * such a holder copies what it keeps (`Uint8Array.prototype.slice`).
 */

/** Bytes per slab: a few dozen chat events; held by its live views at most. */
export const SLAB_BYTES = 8 * 1024;
/** Ranges larger than this get an `ArrayBuffer` of their own (a large chunk would leave a slab mostly unused). */
export const MAX_SLAB_COPY = 1024;

let slab = new Uint8Array(SLAB_BYTES);
let slabBuffer = slab.buffer;
let used = 0;

/** A copy of `bytes` (a view of a slab, or of its own buffer when large). */
export function slabCopy(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return slabCopyRange(bytes, 0, bytes.length);
}

/**
 * Sources up to this size are copied whole by `slabCopyRange` when the range starts within `WHOLE_COPY_SKIP` bytes
 * of their start: a memcpy of at most 1 KiB costs less than the view of the range it saves (~100 bytes of garbage;
 * a stream's connection buffer is 512 bytes after its first reads, and holds one event per read: its chunk-size
 * line, then the event).
 */
export const WHOLE_COPY_BYTES = 1024;
/** The most slab bytes a whole copy leaves unused before its range (a read that brought several events: none). */
export const WHOLE_COPY_SKIP = 32;

/**
 * A copy of `source[from, to)`. A small source whose range starts near its start is copied whole while the slab has
 * room for it, and the copy is the view of the range within it: the few bytes before the range are left unused,
 * those after it are written over by the next copy (no view covers them), and no view of the source's range is made.
 */
export function slabCopyRange(source: Uint8Array, from: number, to: number): Uint8Array<ArrayBuffer> {
  const length = to - from;
  if (length > MAX_SLAB_COPY) return source.slice(from, to);
  if (source.length <= WHOLE_COPY_BYTES && from <= WHOLE_COPY_SKIP && used + source.length <= SLAB_BYTES) {
    slab.set(source, used);
    used += from;
  } else {
    if (used + length > SLAB_BYTES) {
      slab = new Uint8Array(SLAB_BYTES);
      slabBuffer = slab.buffer;
      used = 0;
    }
    slab.set(source.subarray(from, to), used);
  }
  // A view made on the buffer: `subarray` looks up the species constructor and costs ~40 ns more.
  const copy = new Uint8Array(slabBuffer, used, length);
  used += length;
  return copy;
}
