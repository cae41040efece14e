import type { Dispatcher } from 'undici';
import { UNREAD_BODY_MAX_BYTES, sendRequest } from '../../../src/services/download/http-response.js';

/** A controller that records what the body asked of the socket. */
class FakeController implements Dispatcher.DispatchController {
  paused = false;
  aborted = false;
  reason: Error | null = null;
  pauses = 0;
  resumes = 0;
  onResume: (() => void) | undefined;

  abort(reason: Error): void {
    this.aborted = true;
    this.reason = reason;
  }
  pause(): void {
    this.paused = true;
    this.pauses += 1;
  }
  resume(): void {
    this.paused = false;
    this.resumes += 1;
    this.onResume?.();
  }
}

/** A dispatcher whose responses the test plays, callback by callback, as undici would. */
function fakeDispatcher() {
  let handler: Dispatcher.DispatchHandler | undefined;
  const controller = new FakeController();
  const dispatcher = {
    dispatch(_options: Dispatcher.DispatchOptions, h: Dispatcher.DispatchHandler) {
      handler = h;
      h.onRequestStart?.(controller, {});
      return true;
    },
  } as unknown as Dispatcher;
  const h = () => handler as Dispatcher.DispatchHandler;
  return {
    dispatcher,
    controller,
    headers: (status = 200, headers: Record<string, string> = {}) =>
      h().onResponseStart?.(controller, status, headers, 'OK'),
    data: (chunk: Buffer | string) =>
      h().onResponseData?.(controller, typeof chunk === 'string' ? Buffer.from(chunk) : chunk),
    end: () => h().onResponseEnd?.(controller, {}),
    error: (error: Error) => h().onResponseError?.(controller, error),
  };
}

const options: Dispatcher.DispatchOptions = { origin: 'http://x', path: '/', method: 'GET' };

describe('sendRequest and ResponseBody', () => {
  it('keeps chunks that arrive before the body is read and delivers them in order', async () => {
    // Prepare: the whole response arrives in one go, as a small body does.
    const fake = fakeDispatcher();
    const pending = sendRequest(fake.dispatcher, options);
    fake.headers(200, { 'content-length': '6' });
    fake.data('ab');
    fake.data('cd');
    fake.data('ef');
    fake.end();

    // Act
    const response = await pending;
    const seen: string[] = [];
    await response.body.read((chunk) => {
      seen.push(chunk.toString());
      return true;
    });

    // Assess
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-length']).toBe('6');
    expect(seen).toEqual(['ab', 'cd', 'ef']);
    expect(fake.controller.pauses).toBe(0);
  });

  it('ignores informational responses and resolves with the final one', async () => {
    const fake = fakeDispatcher();
    const pending = sendRequest(fake.dispatcher, options);
    fake.headers(100);
    fake.headers(204);
    fake.end();
    expect((await pending).statusCode).toBe(204);
  });

  it('pauses the socket while nobody reads and more than the unread limit has arrived', async () => {
    // Prepare
    const fake = fakeDispatcher();
    const pending = sendRequest(fake.dispatcher, options);
    fake.headers();
    const chunk = Buffer.alloc(64 * 1024, 1);
    for (let sent = 0; sent < UNREAD_BODY_MAX_BYTES; sent += chunk.length) fake.data(chunk);
    const response = await pending;

    // Assess: held back, then released by the reader.
    expect(fake.controller.paused).toBe(true);
    let received = 0;
    const done = response.body.read((c) => {
      received += c.length;
      return true;
    });
    expect(fake.controller.paused).toBe(false);
    fake.end();
    await done;
    expect(received).toBe(UNREAD_BODY_MAX_BYTES);
  });

  it('applies the consumer backpressure and keeps the order across a resume', async () => {
    // Prepare
    const fake = fakeDispatcher();
    const pending = sendRequest(fake.dispatcher, options);
    fake.headers();
    const response = await pending;
    const seen: string[] = [];
    let accept = false;
    const done = response.body.read((chunk) => {
      seen.push(chunk.toString());
      return accept;
    });

    // Act: the consumer refuses after the first chunk; undici may still hand over what it parsed.
    fake.data('1');
    expect(fake.controller.paused).toBe(true);
    fake.data('2');
    fake.data('3');
    expect(seen).toEqual(['1']);
    // Resuming delivers what was held, then undici delivers more synchronously (re-entrantly).
    accept = true;
    fake.controller.onResume = () => {
      fake.controller.onResume = undefined;
      fake.data('4');
      fake.end();
    };
    response.body.resume();

    // Assess
    await done;
    expect(seen).toEqual(['1', '2', '3', '4']);
    expect(fake.controller.resumes).toBe(1);
  });

  it('destroys the body when the consumer throws, and rejects with what it threw', async () => {
    const fake = fakeDispatcher();
    const pending = sendRequest(fake.dispatcher, options);
    fake.headers();
    const response = await pending;
    const boom = new Error('too large');
    const done = response.body.read(() => {
      throw boom;
    });
    fake.data('x');
    await expect(done).rejects.toBe(boom);
    expect(fake.controller.aborted).toBe(true);
    expect(fake.controller.reason).toBe(boom);
    // undici reports the abort back; it changes nothing any more.
    fake.error(boom);
  });

  it('rejects the request on an error before the headers, and the read on an error after', async () => {
    const early = fakeDispatcher();
    const refused = sendRequest(early.dispatcher, options);
    early.error(Object.assign(new Error('refused'), { code: 'ECONNREFUSED' }));
    await expect(refused).rejects.toMatchObject({ code: 'ECONNREFUSED' });

    const late = fakeDispatcher();
    const pending = sendRequest(late.dispatcher, options);
    late.headers();
    late.data('partial');
    late.error(Object.assign(new Error('reset'), { code: 'ECONNRESET' }));
    const response = await pending;
    await expect(response.body.read(() => true)).rejects.toMatchObject({ code: 'ECONNRESET' });
  });

  it('dumps a short body to the end and destroys a long one, never rejecting', async () => {
    const short = fakeDispatcher();
    const a = sendRequest(short.dispatcher, options);
    short.headers(404);
    short.data('not found');
    short.end();
    await (await a).body.dump(1024);
    expect(short.controller.aborted).toBe(false);

    const long = fakeDispatcher();
    const b = sendRequest(long.dispatcher, options);
    long.headers(503);
    const dumped = (await b).body.dump(4);
    long.data('more than four bytes');
    await expect(dumped).resolves.toBeUndefined();
    expect(long.controller.aborted).toBe(true);
  });

  it('aborts an unread body on destroy, but not one that already ended', async () => {
    const open = fakeDispatcher();
    const a = await (async () => {
      const p = sendRequest(open.dispatcher, options);
      open.headers();
      return p;
    })();
    a.body.destroy();
    expect(open.controller.aborted).toBe(true);
    await expect(a.body.read(() => true)).rejects.toThrow('destroyed');

    const ended = fakeDispatcher();
    const b = await (async () => {
      const p = sendRequest(ended.dispatcher, options);
      ended.headers();
      ended.data('x');
      ended.end();
      return p;
    })();
    b.body.destroy();
    expect(ended.controller.aborted).toBe(false);
  });

  it('refuses a second reader', async () => {
    const fake = fakeDispatcher();
    const pending = sendRequest(fake.dispatcher, options);
    fake.headers();
    const response = await pending;
    const first = response.body.read(() => true);
    await expect(response.body.read(() => true)).rejects.toThrow('already being read');
    fake.end();
    await first;
  });
});
