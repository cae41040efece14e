import { InvalidMongoUri, parseMongoUri } from '../../../src/config/mongo-uri.js';

describe('MongoDB connection strings', () => {
  it('split a replica-set string into user, password (decoded and as written), hosts and database', () => {
    expect(parseMongoUri('mongodb://app%40corp:p%40ss%3Aw0rd@h1:27017,h2:27018/shop?replicaSet=rs0')).toEqual(
      {
        scheme: 'mongodb',
        hosts: 'h1:27017,h2:27018',
        username: 'app@corp',
        password: 'p@ss:w0rd',
        passwordAsWritten: 'p%40ss%3Aw0rd',
        database: 'shop',
      },
    );
  });

  it.each([
    ['mongodb://localhost', { scheme: 'mongodb', hosts: 'localhost' }],
    ['mongodb://[::1]:27017/?directConnection=true', { scheme: 'mongodb', hosts: '[::1]:27017' }],
    [
      'mongodb://%2Ftmp%2Fmongodb-27017.sock/db',
      { scheme: 'mongodb', hosts: '%2Ftmp%2Fmongodb-27017.sock', database: 'db' },
    ],
    [
      'mongodb+srv://u@cluster0.example.net/',
      { scheme: 'mongodb+srv', hosts: 'cluster0.example.net', username: 'u' },
    ],
  ])('accept %s', (uri, parts) => {
    expect(parseMongoUri(uri)).toEqual(parts);
  });

  it.each(['mongodb://', 'mongodb://@h/db', 'mongodb://h1,,h2/db', 'MONGODB://h/db', 'mongodb://h:0/db'])(
    'refuse %s',
    (uri) => {
      expect(() => parseMongoUri(uri)).toThrow(InvalidMongoUri);
    },
  );
});
