/**
 * `aws-msg download-urls`: load settings -> read the URL list -> download -> report -> exit code.
 *
 * The download machinery (undici, lib-storage, cli-progress) is imported when the command runs,
 * not when the CLI starts, so other commands and `--help` do not pay for it.
 */
import { setFlagsFromString } from 'node:v8';
import { ExitCode } from '../config/constants.js';
import { DOWNLOAD_URLS_OPTIONS, loadDownloadSettings } from '../config/download-settings.js';
import { AWS_OPTIONS } from '../config/settings.js';
import type { ProgressBar } from '../services/download/progress-bar.js';
import type { CommandDefinition } from './command.js';

/**
 * Process-wide V8 settings for a download run; this process does nothing else. Measured on the
 * 2,000 x 16 KiB and 1 GiB benchmarks (2 cores); none costs wall or CPU time:
 * - `--liftoff-only`: undici parses HTTP with llhttp compiled to WebAssembly; V8's optimising tier
 *   recompiling the parser's large state machine cost ~35 MiB of peak RSS (96 against 62 MiB for
 *   one request) and ~0.1 s of CPU. Read when a module is compiled, so set before the first request.
 * - `--semi-space-growth-factor=1`: every download keeps promises and buffers alive across a few
 *   milliseconds, so V8 kept doubling the young generation up to 3 x 16 MiB; at its initial size
 *   peak RSS drops by ~20 MiB (97 -> 76 MiB on 2,000 files; 204 -> 175 MiB on 20,000).
 * - `--no-incremental-marking`: with a heap this small, the stream of 64 KiB network buffers made
 *   V8 start a marking cycle after most external-memory scavenges: 36 full collections per GiB,
 *   ~0.5 s of CPU, although the old generation stayed far below its limit (9 of 40 MB). Without
 *   incremental marking there were none (1 GiB, no hashing: 1.69 -> 1.28 s); a full collection,
 *   when one is due, is a single pause, which a batch download does not mind.
 * Should a future V8 drop one of them, it prints a warning on stderr and ignores it; nothing else changes.
 */
function tuneV8ForDownloads(): void {
  setFlagsFromString('--liftoff-only');
  setFlagsFromString('--semi-space-growth-factor=1');
  setFlagsFromString('--no-incremental-marking');
}

export const downloadUrlsCommand: CommandDefinition = {
  name: 'download-urls',
  summary: 'Download a list of URLs concurrently, with retries, resume and SHA-256 checks',
  description:
    'Download every URL of a JSON list into a directory (or an S3 prefix). A file appears under ' +
    'its final name only when it is complete and verified; transient failures are retried with ' +
    'backoff, interrupted downloads resume, and re-runs skip what is already there.',
  options: [AWS_OPTIONS, DOWNLOAD_URLS_OPTIONS],
  examples: [
    [
      'aws-msg download-urls --file input_data/urls.json',
      'download into ./downloads, skipping files already there',
    ],
    [
      'aws-msg download-urls --file urls.json --out data --concurrency 32 --per-host 8 --report report.json',
      'more parallelism, and a JSON report with one entry per URL',
    ],
    [
      'aws-msg download-urls --file urls.json --if-changed',
      're-run: ask the servers (ETag / Last-Modified) and fetch only what changed',
    ],
    [
      'aws-msg download-urls --file urls.json --to s3://my-bucket/raw/2024-06 --region eu-west-1',
      'stream every file into S3 (multipart upload) instead of the disk',
    ],
    [
      'aws-msg download-urls --file urls.json --retries 5 --max-retry-wait 2m --max-bytes 2GiB --json',
      'patient retries, a size cap, and the summary as JSON on stdout',
    ],
  ],

  async action(context) {
    const settings = loadDownloadSettings(context.sources, context.cwd);
    tuneV8ForDownloads();
    const [{ loadUrlList }, { downloadUrls }, report, clients] = await Promise.all([
      import('../services/download/input.js'),
      import('../services/downloader-service.js'),
      import('../services/download/report.js'),
      import('../aws/clients.js'),
    ]);
    const entries = await loadUrlList(settings.file, { maxBytes: settings.maxInputBytes });

    const s3Requests = new clients.RequestCounter();
    // The S3 SDK is loaded only for --to s3://.
    const s3 =
      settings.aws !== undefined
        ? (await import('../aws/s3-handler.js')).createS3Client(settings.aws, s3Requests)
        : undefined;
    // The bar draws on stderr next to the logs, and only for a person watching.
    let bar: ProgressBar | undefined;
    if (context.interactive && !settings.quiet) {
      bar = (await import('../services/download/progress-bar.js')).createProgressBar(context.stderr);
    }

    let result;
    try {
      result = await downloadUrls(entries, settings, {
        logger: context.logger,
        signal: context.signal,
        s3Requests,
        ...(s3 ? { s3 } : {}),
        ...(bar ? { observer: bar } : {}),
      });
    } finally {
      bar?.stop();
      s3?.destroy();
    }

    if (settings.reportFile !== undefined) await report.writeReportFile(settings.reportFile, result);
    const { summary } = result;
    if (settings.json) context.stdout.write(`${JSON.stringify(summary)}\n`);
    if (!settings.quiet) {
      context.logger.info('downloads_finished', { summary: report.formatSummary(summary), ...summary });
    }
    return report.allSucceeded(summary) ? ExitCode.OK : ExitCode.PARTIAL_FAILURE;
  },
};
