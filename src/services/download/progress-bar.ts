/**
 * A terminal progress bar for `download-urls` (cli-progress): files done, bytes, rate, failures.
 * Bytes arrive per network chunk, so they are only counted there; the bar is redrawn on a timer.
 */
import cliProgress from 'cli-progress';
import { formatBytes } from './report.js';
import type { DownloadObserver, DownloadResult } from './types.js';

const REDRAW_MS = 200;

export interface ProgressBar extends DownloadObserver {
  stop(): void;
}

export function createProgressBar(stream: NodeJS.WritableStream): ProgressBar {
  const bar = new cliProgress.SingleBar(
    {
      stream,
      format:
        'downloads {bar} {value}/{total} files | {bytes} | {rate}/s | {failed} failed | ETA {eta_formatted}',
      hideCursor: true,
      fps: 5,
      etaBuffer: 50,
      barsize: 24,
    },
    cliProgress.Presets.shades_classic,
  );
  let bytes = 0;
  let failed = 0;
  let done = 0;
  let started = 0;
  let timer: NodeJS.Timeout | undefined;
  const payload = () => {
    const seconds = Math.max(0.001, (Date.now() - started) / 1000);
    return { bytes: formatBytes(bytes), rate: formatBytes(Math.round(bytes / seconds)), failed };
  };
  const stop = () => {
    if (timer) clearInterval(timer);
    timer = undefined;
    if (started !== 0) {
      bar.update(done, payload());
      bar.stop();
      started = 0;
    }
  };
  return {
    onRunStart(total: number) {
      started = Date.now();
      bar.start(total, 0, payload());
      timer = setInterval(() => bar.update(done, payload()), REDRAW_MS);
      timer.unref();
    },
    onBytes(n: number) {
      bytes += n;
    },
    onResult(result: DownloadResult) {
      done += 1;
      if (result.status === 'failed' || result.status === 'cancelled') failed += 1;
    },
    onRunEnd: stop,
    stop,
  };
}
