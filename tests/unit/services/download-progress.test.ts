import { createProgressBar } from '../../../src/services/download/progress-bar.js';
import type { DownloadResult } from '../../../src/services/download/types.js';
import { CaptureStream } from '../../helpers/streams.js';

/** A stream that says it is a terminal, as cli-progress checks. */
class FakeTerminal extends CaptureStream {
  override isTTY = true;
  columns = 200;
  cursorTo(): boolean {
    return true;
  }
  clearLine(): boolean {
    return true;
  }
  moveCursor(): boolean {
    return true;
  }
}

function outcome(status: DownloadResult['status']): DownloadResult {
  return { status } as DownloadResult;
}

describe('progress bar', () => {
  it('shows files done, bytes, rate and failures', () => {
    // Prepare
    const terminal = new FakeTerminal();
    const bar = createProgressBar(terminal);

    // Act
    bar.onRunStart?.(3);
    bar.onBytes?.(2048);
    bar.onResult?.(outcome('downloaded'));
    bar.onResult?.(outcome('failed'));
    bar.onResult?.(outcome('skipped'));
    bar.stop();

    // Assess
    const text = terminal.text();
    expect(text).toContain('3/3 files');
    expect(text).toContain('2.0 KiB');
    expect(text).toContain('1 failed');
  });

  it('draws nothing when the stream is not a terminal', () => {
    const plain = new CaptureStream();
    const bar = createProgressBar(plain);
    bar.onRunStart?.(1);
    bar.onResult?.(outcome('downloaded'));
    bar.stop();
    expect(plain.text()).toBe('');
  });
});
