import { createProgressBar, type ProgressBar } from '../../../src/services/download/progress-bar.js';
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

type Hooks = Required<Pick<ProgressBar, 'onRunStart' | 'onBytes' | 'onResult'>>;

/** The observer hooks the bar must implement: a renamed or missing hook fails here, not silently. */
function hooks(bar: ProgressBar): Hooks {
  expect(bar).toEqual(
    expect.objectContaining({
      onRunStart: expect.any(Function),
      onBytes: expect.any(Function),
      onResult: expect.any(Function),
    }),
  );
  return bar as Hooks;
}

function outcome(status: DownloadResult['status']): DownloadResult {
  return { status } as DownloadResult;
}

describe('progress bar', () => {
  it('shows files done, bytes, rate and failures', () => {
    // Prepare
    const terminal = new FakeTerminal();
    const bar = createProgressBar(terminal);
    const hooked = hooks(bar);

    // Act
    hooked.onRunStart(3);
    hooked.onBytes(2048);
    hooked.onResult(outcome('downloaded'));
    hooked.onResult(outcome('failed'));
    hooked.onResult(outcome('skipped'));
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
    const hooked = hooks(bar);
    hooked.onRunStart(1);
    hooked.onResult(outcome('downloaded'));
    bar.stop();
    expect(plain.text()).toBe('');
  });
});
