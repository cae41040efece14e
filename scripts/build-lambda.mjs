#!/usr/bin/env node
/**
 * Builds the Lambda deployment package:
 *
 *   dist/lambda/index.mjs            one ESM bundle of src/aws/lambda-entrypoint.ts (handler: index.handler)
 *   dist/lambda/index.mjs.map        its source map (NODE_OPTIONS=--enable-source-maps in template.yaml)
 *   dist/lambda/schemas/*.json       the JSON Schemas the function may read (MESSAGE_SCHEMA)
 *   dist/lambda/aws-msg-lambda.zip   all of the above, ready for `sam deploy` or `aws lambda update-function-code`
 *
 * The AWS SDK is bundled, not taken from the runtime. The SDK the nodejs22.x runtime ships is
 * whatever version AWS put there, and it changes under a deployed function without a deploy;
 * bundling runs exactly the versions package-lock.json pins and the tests ran, and esbuild keeps
 * only the three clients (SQS, S3, and Secrets Manager for MONGODB_URI_SECRET_ARN /
 * MSSQL_URL_SECRET_ARN) and what they use, which is a fraction of the runtime's copy.
 *
 * The zip is reproducible: fixed timestamps and a fixed file order, so the same sources give the
 * same bytes and `sam deploy` uploads only when something changed.
 */
import { build } from 'esbuild';
import { mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { crc32, deflateRawSync } from 'node:zlib';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const OUT_DIR = join(ROOT, 'dist', 'lambda');
const BUNDLE = join(OUT_DIR, 'index.mjs');
const ZIP = join(OUT_DIR, 'aws-msg-lambda.zip');

// Optional peers of the mongodb driver, loaded only when a URI asks for what they do (Kerberos,
// compression, client-side encryption, MONGODB-AWS or GCP auth, SOCKS). They are native or absent,
// so they stay out of the bundle; the driver copes with them missing.
const EXTERNAL = [
  'kerberos',
  '@mongodb-js/zstd',
  'snappy',
  'mongodb-client-encryption',
  '@aws-sdk/credential-providers',
  'gcp-metadata',
  'socks',
];

// The SDK clients the handler builds; each must end up in the bundle.
const BUNDLED_CLIENTS = ['@aws-sdk/client-sqs', '@aws-sdk/client-s3', '@aws-sdk/client-secrets-manager'];

// CommonJS dependencies (mssql, tedious, winston...) call require() for Node's built-ins and read
// __dirname; an ESM bundle has neither, so they are defined up front under names no module uses.
const BANNER = [
  "import { createRequire as __awsMsgCreateRequire } from 'node:module';",
  "import { fileURLToPath as __awsMsgFileURLToPath } from 'node:url';",
  "import { dirname as __awsMsgDirname } from 'node:path';",
  'const require = __awsMsgCreateRequire(import.meta.url);',
  'const __filename = __awsMsgFileURLToPath(import.meta.url);',
  'const __dirname = __awsMsgDirname(__filename);',
].join('\n');

/** The files of the package, as [name in the zip, absolute path], in a fixed order. */
async function packageFiles() {
  const files = [
    ['index.mjs', BUNDLE],
    ['index.mjs.map', `${BUNDLE}.map`],
  ];
  const schemas = (await readdir(join(ROOT, 'schemas'))).filter((name) => name.endsWith('.json')).sort();
  for (const name of schemas) files.push([`schemas/${name}`, join(OUT_DIR, 'schemas', name)]);
  return files;
}

// ---------------------------------------------------------------------------------------------
// A minimal ZIP writer (deflate, no extra fields): enough for Lambda, and no `zip` binary needed.
// ---------------------------------------------------------------------------------------------

/** 1980-01-01 00:00 in MS-DOS format: a fixed time keeps the archive reproducible. */
const DOS_TIME = 0;
const DOS_DATE = (0 << 9) | (1 << 5) | 1;

function zip(entries) {
  const locals = [];
  const centrals = [];
  let offset = 0;
  for (const { name, data } of entries) {
    const nameBytes = Buffer.from(name, 'utf8');
    const compressed = deflateRawSync(data, { level: 9 });
    const checksum = crc32(data);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4); // version needed: 2.0 (deflate)
    local.writeUInt16LE(0x0800, 6); // UTF-8 names
    local.writeUInt16LE(8, 8); // deflate
    local.writeUInt16LE(DOS_TIME, 10);
    local.writeUInt16LE(DOS_DATE, 12);
    local.writeUInt32LE(checksum, 14);
    local.writeUInt32LE(compressed.length, 18);
    local.writeUInt32LE(data.length, 22);
    local.writeUInt16LE(nameBytes.length, 26);
    local.writeUInt16LE(0, 28);
    locals.push(local, nameBytes, compressed);

    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE((3 << 8) | 20, 4); // made by: Unix, 2.0
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(0x0800, 8);
    central.writeUInt16LE(8, 10);
    central.writeUInt16LE(DOS_TIME, 12);
    central.writeUInt16LE(DOS_DATE, 14);
    central.writeUInt32LE(checksum, 16);
    central.writeUInt32LE(compressed.length, 20);
    central.writeUInt32LE(data.length, 24);
    central.writeUInt16LE(nameBytes.length, 28);
    central.writeUInt16LE(0, 30); // extra
    central.writeUInt16LE(0, 32); // comment
    central.writeUInt16LE(0, 34); // disk
    central.writeUInt16LE(0, 36); // internal attributes
    central.writeUInt32LE((0o100644 << 16) >>> 0, 38); // -rw-r--r--: Lambda must be able to read it
    central.writeUInt32LE(offset, 42);
    centrals.push(central, nameBytes);
    offset += local.length + nameBytes.length + compressed.length;
  }
  const directory = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(directory.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, directory, end]);
}

function formatBytes(bytes) {
  return bytes >= 1024 * 1024
    ? `${(bytes / 1024 / 1024).toFixed(2)} MiB`
    : `${(bytes / 1024).toFixed(1)} KiB`;
}

async function main() {
  await rm(OUT_DIR, { recursive: true, force: true });
  await mkdir(join(OUT_DIR, 'schemas'), { recursive: true });
  const result = await build({
    entryPoints: [join(ROOT, 'src', 'aws', 'lambda-entrypoint.ts')],
    outfile: BUNDLE,
    bundle: true,
    platform: 'node',
    target: 'node22',
    format: 'esm',
    // The ES-module builds of the AWS SDK tree-shake far better than its CommonJS ones.
    mainFields: ['module', 'main'],
    minify: true,
    // Class and function names stay readable in stack traces and error names.
    keepNames: true,
    sourcemap: 'linked',
    sourcesContent: false,
    legalComments: 'none',
    external: EXTERNAL,
    banner: { js: BANNER },
    metafile: true,
    logLevel: 'warning',
  });
  for (const name of (await readdir(join(ROOT, 'schemas'))).filter((n) => n.endsWith('.json'))) {
    await writeFile(join(OUT_DIR, 'schemas', name), await readFile(join(ROOT, 'schemas', name)));
  }
  const files = await packageFiles();
  const entries = [];
  for (const [name, path] of files) entries.push({ name, data: await readFile(path) });
  await writeFile(ZIP, zip(entries));

  const bundleBytes = (await stat(BUNDLE)).size;
  const zipBytes = (await stat(ZIP)).size;
  const inputs = Object.entries(result.metafile.outputs[relative(process.cwd(), BUNDLE)]?.inputs ?? {});
  const byPackage = new Map();
  for (const [path, { bytesInOutput }] of inputs) {
    const match = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(path);
    const name = match ? match[1] : 'aws-msg';
    byPackage.set(name, (byPackage.get(name) ?? 0) + bytesInOutput);
  }
  // The SDK clients the function builds must be in the bundle, not left to the runtime's copy.
  const missing = BUNDLED_CLIENTS.filter((name) => !byPackage.has(name));
  if (missing.length > 0) throw new Error(`not bundled: ${missing.join(', ')}`);
  const largest = [...byPackage.entries()].sort((a, b) => b[1] - a[1]).slice(0, 8);
  console.log(`${relative(ROOT, BUNDLE)}: ${formatBytes(bundleBytes)} (${bundleBytes} bytes)`);
  console.log(
    `${relative(ROOT, ZIP)}: ${formatBytes(zipBytes)} (${zipBytes} bytes), ${entries.length} files`,
  );
  console.log(
    `SDK clients: ${BUNDLED_CLIENTS.map((name) => `${name} ${formatBytes(byPackage.get(name))}`).join(', ')}`,
  );
  console.log(`largest parts: ${largest.map(([name, bytes]) => `${name} ${formatBytes(bytes)}`).join(', ')}`);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
