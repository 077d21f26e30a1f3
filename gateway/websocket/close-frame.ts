/**
 * The upstream-to-client half of a proxied WebSocket, passed through frame by frame so the
 * gateway can end it with a close frame of its own (1008 policy violation, RFC 6455 §7.4.1)
 * without cutting a frame in two: it reads each frame's header (RFC 6455 §5.2) only to know
 * where the frame ends, and never buffers payload.
 */
import { Transform, type TransformCallback } from 'node:stream';

/** A server-to-client close frame (unmasked): FIN + opcode 8, the code, a short reason. */
export function closeFrame(code: number, reason: string): Buffer {
  const text = Buffer.from(reason).subarray(0, 123);
  const frame = Buffer.alloc(4 + text.length);
  frame[0] = 0x88;
  frame[1] = 2 + text.length;
  frame.writeUInt16BE(code, 2);
  text.copy(frame, 4);
  return frame;
}

export class FramePassage extends Transform {
  /** Bytes of the current frame's header seen so far (at most 14). */
  private header = Buffer.alloc(0);
  /** Payload bytes of the current frame still to pass; 0 between frames. */
  private remaining = 0;
  private closing: Buffer | undefined;

  /** Sends `frame` at the next frame boundary (now, if between frames) and ends the passage. */
  closeWith(frame: Buffer): void {
    if (this.closing || this.writableEnded) return;
    this.closing = frame;
    if (this.atBoundary()) this.finishWithClose();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    let offset = 0;
    while (offset < chunk.length && !this.readableEnded) {
      if (this.remaining > 0) {
        const take = Math.min(this.remaining, chunk.length - offset);
        this.push(chunk.subarray(offset, offset + take));
        this.remaining -= take;
        offset += take;
      } else {
        const take = Math.min(this.headerNeed() - this.header.length, chunk.length - offset);
        this.header = Buffer.concat([this.header, chunk.subarray(offset, offset + take)]);
        offset += take;
        const need = this.headerNeed();
        if (this.header.length < need) continue;
        this.push(this.header);
        this.remaining = payloadLength(this.header);
        this.header = Buffer.alloc(0);
      }
      if (this.closing && this.atBoundary()) return this.finishWithClose(done);
    }
    done();
  }

  private atBoundary(): boolean {
    return this.remaining === 0 && this.header.length === 0;
  }

  /** The header's full length once its first two bytes are known (2 until then). */
  private headerNeed(): number {
    if (this.header.length < 2) return 2;
    const len7 = this.header[1]! & 0x7f;
    const mask = this.header[1]! & 0x80 ? 4 : 0;
    return 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + mask;
  }

  private finishWithClose(done?: TransformCallback): void {
    this.push(this.closing);
    this.push(null);
    done?.();
  }
}

function payloadLength(header: Buffer): number {
  const len7 = header[1]! & 0x7f;
  if (len7 === 126) return header.readUInt16BE(2);
  if (len7 === 127) return Number(header.readBigUInt64BE(2));
  return len7;
}
