import { Writable } from 'node:stream';

/** A writable that keeps what was written, for asserting on stdout/stderr/log output. */
export class CaptureStream extends Writable {
  chunks: string[] = [];
  isTTY = false;

  override _write(chunk: Buffer | string, _encoding: BufferEncoding, callback: () => void): void {
    this.chunks.push(chunk.toString());
    callback();
  }

  text(): string {
    return this.chunks.join('');
  }

  lines(): string[] {
    return this.text()
      .split('\n')
      .filter((line) => line !== '');
  }
}
