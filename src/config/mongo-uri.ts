/**
 * MongoDB connection strings, read the way the driver reads them (the connection string spec),
 * not as WHATWG URLs: a replica set names several hosts (`mongodb://h1:27017,h2:27017/db`), which
 * `new URL()` refuses. Only the shape is checked here; the driver still parses the options.
 */

/** Why a connection string was refused. The message never contains a part of the string. */
export class InvalidMongoUri extends Error {}

export interface MongoUriParts {
  scheme: 'mongodb' | 'mongodb+srv';
  /** `h1:27017,h2:27017`: the host list as written. */
  hosts: string;
  /** Decoded. */
  username?: string;
  /** Decoded. */
  password?: string;
  /** The password as spelled in the string (percent-encoded), for redaction. */
  passwordAsWritten?: string;
  /** Decoded; undefined when the path is empty. */
  database?: string;
}

const SCHEME = /^(mongodb|mongodb\+srv):\/\//;
// Characters that must be percent-encoded in the user name and password (as the driver requires).
const UNESCAPED = /[:/?#[\]@]/;
const HOST = /^(?:\[[0-9A-Fa-f:.]+\]|[^\s:[\]]+)(?::(\d{1,5}))?$/;

function decode(text: string, what: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw new InvalidMongoUri(`${what} has a "%" not followed by two hex digits (write "%" as %25)`);
  }
}

/** Splits a `mongodb://` or `mongodb+srv://` connection string. Throws InvalidMongoUri. */
export function parseMongoUri(text: string): MongoUriParts {
  const scheme = SCHEME.exec(text);
  if (scheme === null) throw new InvalidMongoUri('it does not start with mongodb:// or mongodb+srv://');
  const rest = text.slice(scheme[0].length);
  // The authority ends at the first "/" or "?"; user-info and host list never hold either (unescaped).
  const end = rest.search(/[/?]/);
  const authority = end === -1 ? rest : rest.slice(0, end);
  const tail = end === -1 ? '' : rest.slice(end);
  const at = authority.lastIndexOf('@');
  const userInfo = at === -1 ? undefined : authority.slice(0, at);
  const hosts = authority.slice(at + 1);
  if (/^[^?]*@/.test(tail) || (userInfo !== undefined && userInfo.includes('@'))) {
    throw new InvalidMongoUri(
      'the user name or password holds an unescaped character: percent-encode @ / ? # [ ] : as %40 %2F %3F %23 %5B %5D %3A',
    );
  }
  const parts: MongoUriParts = { scheme: scheme[1] as MongoUriParts['scheme'], hosts };
  if (userInfo !== undefined) {
    const colon = userInfo.indexOf(':');
    const username = colon === -1 ? userInfo : userInfo.slice(0, colon);
    const password = colon === -1 ? undefined : userInfo.slice(colon + 1);
    if (username === '') throw new InvalidMongoUri('the user name before "@" is empty');
    if (UNESCAPED.test(username) || (password !== undefined && UNESCAPED.test(password))) {
      throw new InvalidMongoUri(
        'the user name or password holds an unescaped character: percent-encode @ / ? # [ ] : as %40 %2F %3F %23 %5B %5D %3A',
      );
    }
    parts.username = decode(username, 'the user name');
    if (password !== undefined && password !== '') {
      parts.password = decode(password, 'the password');
      parts.passwordAsWritten = password;
    }
  }
  const hostList = hosts.split(',');
  for (const host of hostList) {
    const match = HOST.exec(host);
    const port = match?.[1] === undefined ? undefined : Number(match[1]);
    if (match === null || (port !== undefined && (port < 1 || port > 65_535))) {
      throw new InvalidMongoUri('expected a host list such as host1:27017,host2:27017');
    }
    if (parts.scheme === 'mongodb+srv' && port !== undefined) {
      throw new InvalidMongoUri('a mongodb+srv:// host takes no port');
    }
  }
  if (parts.scheme === 'mongodb+srv' && hostList.length !== 1) {
    throw new InvalidMongoUri('mongodb+srv:// takes exactly one host name');
  }
  const path = tail.startsWith('/') ? (tail.slice(1).split('?')[0] ?? '') : '';
  const database = decode(path, 'the database name');
  if (database !== '') parts.database = database;
  return parts;
}

/** The host list of a connection string, for messages; undefined when it is not one. */
export function mongoUriHosts(text: string): string | undefined {
  try {
    return parseMongoUri(text).hosts;
  } catch {
    return undefined;
  }
}
