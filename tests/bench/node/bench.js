// The benchmark's single- and multi-document tasks through Mongoose 9 (models, lean reads).
//   node bench.js URI DATA_DIR N REPEAT LARGE     prints one JSON result per line
const fs = require("fs");
const mongoose = require("mongoose");
const { EJSON, calculateObjectSize } = require("bson"); // the driver's own BSON package

const [uri, dir, nArg, repArg, largeArg] = process.argv.slice(2);
const n = Number(nArg), repeat = Number(repArg), largeCount = Number(largeArg ?? 10);
const load = (name) => EJSON.parse(fs.readFileSync(`${dir}/${name}`, "utf8"), { relaxed: false });
const size = (doc) => calculateObjectSize(doc);
const cpu = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1e6; };
const median = (xs) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function run(task, ops, bytes, body, setup) {
  const walls = [], cpus = [];
  for (let r = 0; r < repeat; r++) {
    if (setup) await setup();
    const w0 = process.hrtime.bigint(), c0 = cpu();
    await body();
    walls.push(Number(process.hrtime.bigint() - w0) / 1e9);
    cpus.push(cpu() - c0);
  }
  console.log(JSON.stringify({ task, client: "mongoose", ops, bytes, seconds: median(walls),
    cpu_seconds: median(cpus), wall_spread: [Math.min(...walls), Math.max(...walls)], iterations: repeat }));
}

(async () => {
  const conn = await mongoose.createConnection(uri + "bench_node").asPromise();
  const any = new mongoose.Schema({}, { strict: false, versionKey: false, _id: false });
  const Tweet = conn.model("Tweet", any, "tweets");
  const Small = conn.model("Small", new mongoose.Schema({}, { strict: false, versionKey: false }), "smalls");
  const Large = conn.model("Large", new mongoose.Schema({}, { strict: false, versionKey: false }), "larges");
  const tweet = load("tweet.json"), small = load("small_doc.json"), large = load("large_doc.json");
  await Tweet.collection.drop().catch(() => {});
  for (let i = 1; i <= n; i++) await Tweet.collection.insertOne({ ...tweet, _id: i });

  await run("find_one by _id", n, n * size(tweet), async () => {
    for (let i = 1; i <= n; i++) await Tweet.findOne({ _id: i }).lean();
  });
  await run("insert_one small", n, n * size(small), async () => {
    for (let i = 0; i < n; i++) await Small.create({ ...small });
  }, () => Small.collection.drop().catch(() => {}));
  await run("find all tweets", n, n * size(tweet), async () => { await Tweet.find({}).lean(); });
  await run("insert_many small", n, n * size(small), async () => {
    await Small.insertMany(Array.from({ length: n }, () => ({ ...small })), { lean: true });
  }, () => Small.collection.drop().catch(() => {}));
  if (largeCount > 0) {
    await run("insert_many large", largeCount, largeCount * size(large), async () => {
      await Large.insertMany(Array.from({ length: largeCount }, () => ({ ...large })), { lean: true });
    }, () => Large.collection.drop().catch(() => {}));
  }
  await conn.close();
})().catch((e) => { console.error(e); process.exit(1); });
