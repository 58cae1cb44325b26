// The conformance scenarios through Mongoose 9 itself: the reference mgconn is compared with.
//
//   node mongoose.js SCENARIO URI [ARG_JSON]
//
// Each scenario prints one line `TRACE {...}`: the events in order, every operation's outcome
// (ok, or an error category and message) and scenario values. Faults are asked of the harness with a
// line `CONTROL kill|restart|pause|resume`, answered on stdin once done. mgconn_python.py and
// mgconn_lua.lua run the same scenarios, step for step; run.py compares the three.
'use strict';
const path = require('path');
const readline = require('readline');
const mongoose = require(path.join(__dirname, 'node_modules', 'mongoose'));

const [scenario, uri, argJson] = process.argv.slice(2);
const arg = argJson ? JSON.parse(argJson) : null;
const closedUri = 'mongodb://127.0.0.1:1/conformance';
const EVENTS = ['connecting', 'connected', 'open', 'disconnecting', 'disconnected', 'close', 'reconnected', 'error'];

const lines = readline.createInterface({ input: process.stdin });
const answers = [];
let waiting = null;
lines.on('line', (l) => { if (waiting) { const w = waiting; waiting = null; w(l); } else answers.push(l); });
function control(what) {
  process.stdout.write(`CONTROL ${what}\n`);
  return new Promise((resolve) => { if (answers.length) resolve(answers.shift()); else waiting = resolve; });
}

function watch(conn) {
  const seen = [];
  for (const name of EVENTS) conn.on(name, () => seen.push(name));
  return seen;
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function until(pred, ms = 15000) {
  const end = Date.now() + ms;
  while (!pred() && Date.now() < end) await sleep(10);
}

function category(e) {
  const n = e.name || '';
  const m = String(e.message);
  if (/ServerSelection/.test(n)) return 'ServerSelection';
  if (/buffering timed out/.test(m)) return 'BufferTimeout';
  if (/before initial connection is complete|while the connection is down/.test(m)) return 'NotConnected';
  if (n === 'OverwriteModelError') return 'OverwriteModel';
  if (n === 'MissingSchemaError') return 'MissingSchema';
  if (/TopologyClosed|ClientClosed|force closed|Connection was closed/.test(n + m)) return 'ConnectionClosed';
  if (/active connection with different connection strings/.test(m)) return 'InvalidArgument';
  if (e.code === 11000) return 'DuplicateKey';
  if (/MongoNetwork/.test(n)) return 'Network';
  return n || 'Error';
}
async function outcome(op, promise) {
  try {
    await promise;
    return { op, ok: true };
  } catch (e) {
    return { op, ok: false, category: category(e), message: String(e.message) };
  }
}
const schema = (opts) => new mongoose.Schema({ name: String }, opts || {});

const scenarios = {
  async open_order() {
    const conn = mongoose.createConnection(uri);
    const events = watch(conn);
    await conn.asPromise();
    const trace = { events: [...events], values: { readyState: conn.readyState } };
    await conn.close();
    return trace;
  },
  async initial_failure() {
    const conn = mongoose.createConnection(closedUri, { serverSelectionTimeoutMS: 500 });
    const events = watch(conn);
    const o = await outcome('asPromise', conn.asPromise());
    await sleep(50);
    return { events, outcomes: [o], values: { readyState: conn.readyState } };
  },
  async buffered_before_open() {
    const conn = mongoose.createConnection();
    const User = conn.model('User', schema());
    const saved = User.create({ name: 'ada' });
    conn.openUri(uri);
    const o = await outcome('create', saved);
    const found = await User.findOne({ name: 'ada' }).lean();
    await conn.close();
    return { outcomes: [o], values: { found: found && found.name } };
  },
  async buffer_timeout() {
    const conn = mongoose.createConnection();
    const User = conn.model('User', schema({ bufferTimeoutMS: 300 }));
    return { outcomes: [await outcome('findOne', User.findOne({}))] };
  },
  async buffer_commands_off() {
    const conn = mongoose.createConnection();
    const User = conn.model('User', schema({ bufferCommands: false }));
    return { outcomes: [await outcome('findOne', User.findOne({}))] };
  },
  async kill_restart() {
    const conn = mongoose.createConnection(uri, { heartbeatFrequencyMS: 500 });
    const events = watch(conn);
    await conn.asPromise();
    const from = events.length;
    await control('kill');
    await until(() => events.includes('disconnected'));
    await control('restart');
    await until(() => events.slice(from).includes('reconnected'), 20000);
    await sleep(300);
    const trace = { events: events.slice(from), values: { readyState: conn.readyState } };
    await conn.close();
    return trace;
  },
  async ops_during_outage() {
    const conn = mongoose.createConnection(uri, { heartbeatFrequencyMS: 500, serverSelectionTimeoutMS: 1000 });
    const events = watch(conn);
    const User = conn.model('User', schema());
    await conn.asPromise();
    await User.init(); // the database exists before the kill (FerretDB cannot restart mid-creation)
    await User.create({ name: 'before' });
    await control('kill');
    await until(() => events.includes('disconnected'));
    const saved = outcome('create', User.create({ name: 'during outage' }));
    await sleep(1500); // longer than serverSelectionTimeoutMS, shorter than bufferTimeoutMS
    await control('restart');
    const o = await saved;
    await until(() => events.includes('reconnected'), 20000);
    const n = await User.countDocuments({ name: 'during outage' });
    await conn.close();
    return { outcomes: [o], values: { stored: n } };
  },
  async writes_in_flight_at_kill() {
    // The server is stopped, so both writes are sent and unanswered, then killed and restarted:
    // neither was applied.
    const conn = mongoose.createConnection(uri, { heartbeatFrequencyMS: 500, serverSelectionTimeoutMS: 10000,
                                                  minPoolSize: 5 });
    const events = watch(conn);
    await conn.asPromise();
    const raw = conn.collection('raw');
    await raw.insertOne({ _id: 'counter', n: 0 }); // the database exists before the kill
    await sleep(300);
    await control('pause');
    const inserted = outcome('insertOne', raw.insertOne({ _id: 'in flight' }));
    const incremented = outcome('updateOne', raw.updateOne({ _id: 'counter' }, { $inc: { n: 1 } }));
    await sleep(400);
    await control('kill');
    await control('restart');
    const o = [await inserted, await incremented];
    await until(() => events.includes('reconnected'), 20000);
    const stored = await raw.countDocuments({ _id: 'in flight' });
    const counter = await raw.findOne({ _id: 'counter' });
    await conn.close();
    return { outcomes: o, values: { stored, n: counter.n } };
  },
  async close_sequence() {
    const conn = mongoose.createConnection(uri);
    const events = watch(conn);
    await conn.asPromise();
    const from = events.length;
    await conn.close();
    await sleep(50);
    return { events: events.slice(from), values: { readyState: conn.readyState } };
  },
  async close_force() {
    const conn = mongoose.createConnection(uri, { socketTimeoutMS: 0 });
    const User = conn.model('User', schema());
    await conn.asPromise();
    await User.create({ name: 'ada' });
    await control('pause'); // the server stops answering: the next find stays in flight
    const find = outcome('findOne', User.findOne({ name: 'ada' }));
    await sleep(300);
    await conn.close(true);
    const o = await Promise.race([find, sleep(5000).then(() => ({ op: 'findOne', ok: false, category: 'StillPending' }))]);
    await control('resume');
    return { outcomes: [o], values: { readyState: conn.readyState } };
  },
  async connect_twice() {
    const first = await outcome('connect', mongoose.connect(uri));
    const again = await outcome('connect same URI', mongoose.connect(uri));
    const other = await outcome('connect other URI', mongoose.connect(uri.replace(/\/(\w+)$/, '/other_db')));
    const state = mongoose.connection.readyState;
    await mongoose.disconnect();
    return { outcomes: [first, again, other], values: { readyStateAfter: state } };
  },
  async create_connection_as_promise() {
    const conn = mongoose.createConnection(uri);
    const got = await conn.asPromise();
    const trace = { values: { sameConnection: got === conn, readyState: conn.readyState, name: conn.name } };
    await conn.close();
    return trace;
  },
  async use_db() {
    const conn = mongoose.createConnection(uri);
    await conn.asPromise();
    const a = conn.useDb('tenant_a'), a2 = conn.useDb('tenant_a');
    const c = conn.useDb('tenant_c', { useCache: true }), c2 = conn.useDb('tenant_c', { useCache: true });
    const Child = c.model('User', schema());
    await Child.create({ name: 'in tenant c' });
    const values = {
      sameWithoutCache: a === a2, sameWithCache: c === c2, childName: c.name, childState: c.readyState,
      parentHasModel: Object.keys(conn.models).includes('User'), childCount: await Child.countDocuments({}),
    };
    await conn.close();
    return { values };
  },
  async everyday_operations() {
    const conn = mongoose.createConnection(uri);
    const Item = conn.model('Item', new mongoose.Schema({ _id: Number, name: String, n: Number }, { versionKey: false }));
    await Item.insertMany([{ _id: 1, name: 'a', n: 1 }, { _id: 2, name: 'b', n: 2 }, { _id: 3, name: 'a', n: 3 }]);
    const bulk = await Item.bulkWrite([
      { insertOne: { document: { _id: 4, name: 'c', n: 4 } } },
      { updateOne: { filter: { _id: 1 }, update: { $set: { n: 10 } } } },
      { updateMany: { filter: { name: 'a' }, update: { $inc: { n: 1 } } } },
      { deleteOne: { filter: { _id: 2 } } },
    ]);
    const updated = await Item.findOneAndUpdate({ _id: 3 }, { $set: { name: 'z' } }, { new: true }).lean();
    const before = await Item.findOneAndUpdate({ _id: 4 }, { $set: { n: 40 } }).lean();
    const deleted = await Item.findOneAndDelete({ _id: 1 }).lean();
    const names = (await Item.distinct('name')).sort();
    await Item.collection.createIndex({ n: 1 });
    const indexes = (await Item.listIndexes()).map((ix) => ix.name).sort();
    const values = {
      bulk: [bulk.insertedCount, bulk.matchedCount, bulk.modifiedCount, bulk.deletedCount],
      updated, before, deleted, names, indexes, count: await Item.countDocuments({}),
    };
    await conn.close();
    return { values };
  },
  async sessions_transactions_watch() {
    const conn = mongoose.createConnection(uri);
    const Item = conn.model('Item', new mongoose.Schema({ _id: Number, name: String }, { versionKey: false }));
    await conn.asPromise();
    const session = await conn.startSession();
    await Item.create([{ _id: 1, name: 'in a session' }], { session });
    const found = await Item.findOne({ _id: 1 }, null, { session }).lean();
    await session.endSession();
    const outcomes = [];
    outcomes.push(await outcome('transaction', conn.transaction(async (s) => {
      await Item.create([{ _id: 2, name: 'in a transaction' }], { session: s });
    })));
    outcomes.push(await outcome('watch', new Promise((resolve, reject) => {
      const stream = Item.watch();
      stream.on('change', () => resolve());
      stream.on('error', (e) => { stream.close(); reject(e); });
    })));
    const values = { found, count: await Item.countDocuments({}) };
    await conn.close();
    return { outcomes, values };
  },
  async models() {
    const conn = mongoose.createConnection();
    const s1 = schema(), s2 = schema();
    const User = conn.model('User', s1);
    const outcomes = [];
    outcomes.push(await outcome('model same schema', Promise.resolve().then(() => {
      if (conn.model('User', s1) !== User) throw new Error('a different model came back');
    })));
    outcomes.push(await outcome('model other schema', Promise.resolve().then(() => conn.model('User', s2))));
    outcomes.push(await outcome('model missing', Promise.resolve().then(() => conn.model('Nope'))));
    conn.deleteModel('User');
    outcomes.push(await outcome('model after delete', Promise.resolve().then(() => conn.model('User'))));
    return { outcomes, values: { modelNames: Object.keys(conn.models) } };
  },
  async pluralize() {
    // The collection name a model gets: Mongoose's pluraliser behind its own exceptions.
    const conn = mongoose.createConnection();
    const values = {};
    for (const name of arg) values[name] = conn.model(name, new mongoose.Schema({})).collection.collectionName;
    return { values };
  },
  async autocreate_capped() {
    const conn = mongoose.createConnection(uri);
    const Log = conn.model('Log', new mongoose.Schema({ line: String }, { capped: { size: 4096 } }));
    await Log.init();
    const infos = await conn.db.listCollections({ name: Log.collection.collectionName }).toArray();
    const trace = { values: { collection: Log.collection.collectionName, capped: !!(infos[0] && infos[0].options.capped) } };
    await conn.close();
    return trace;
  },
  async debug_format() {
    const conn = mongoose.createConnection(uri);
    const User = conn.model('User', schema());
    await conn.asPromise();
    mongoose.set('debug', true); // lines go to the console: the harness reads them
    await User.findOne({ name: 'x' });
    await User.countDocuments({ name: 'x' });
    mongoose.set('debug', false);
    await conn.close();
    return {};
  },
};

(async () => {
  const run = scenarios[scenario];
  if (!run) throw new Error(`no scenario ${scenario}`);
  const trace = await run();
  process.stdout.write(`TRACE ${JSON.stringify(trace)}\n`);
  process.exit(0);
})().catch((e) => {
  process.stderr.write(`scenario ${scenario} crashed: ${e.stack}\n`);
  process.exit(1);
});
