// BullMQ for benchmarks/peers.py (Node). bullmq and ioredis are installed by the driver in
// its own folder (BENCH_NODE_DIR, under benchmarks/.peers/), never in the project.
//
//   node bullmq_peer.cjs worker         one worker process, concurrency 8 (the driver starts 2)
//   node bullmq_peer.cjs enqueue W N    enqueue N jobs of workload W, print one JSON line
//
// W1/W2: "noop" jobs, added with Queue.addBulk (BENCH_CHUNK jobs a call), removed on
// completion (no system here keeps results). W3: "limited" jobs with a jobId each (BullMQ
// refuses a jobId that exists: deduplication while the job is kept) and the worker's global
// limiter (max BENCH_RATE_LIMIT per 60 s, never reached); per-key rate limits (groups) are
// only in BullMQ Pro. Every key carries BENCH_PREFIX (BullMQ's `prefix` option).
'use strict';

const path = require('node:path');
const { createRequire } = require('node:module');

const peerRequire = createRequire(path.join(process.env.BENCH_NODE_DIR, 'package.json'));
const { Queue, Worker } = peerRequire('bullmq');
const IORedis = peerRequire('ioredis');

const env = process.env;
const url = env.BENCH_REDIS_URL;
const prefix = env.BENCH_PREFIX;
const queueName = env.BENCH_QUEUE;
const counterKey = env.BENCH_COUNTER;
const rateLimit = Number(env.BENCH_RATE_LIMIT || 1000000);
const keys = Number(env.BENCH_KEYS || 1000);
const chunk = Number(env.BENCH_CHUNK || 1000);
const COUNT_SCRIPT = "return redis.call('INCR', KEYS[1])";

function connection() {
  return new IORedis(url, { maxRetriesPerRequest: null });
}

function worker(workload) {
  const counter = new IORedis(url);
  counter.defineCommand('benchCount', { numberOfKeys: 1, lua: COUNT_SCRIPT });
  const options = { connection: connection(), prefix, concurrency: 8 };
  if (workload === 'W3') {
    options.limiter = { max: rateLimit, duration: 60000 };
  }
  const processor = async () => {
    await counter.benchCount(counterKey);
  };
  const instance = new Worker(queueName, processor, options);
  instance.on('error', (error) => console.error(error));
  const stop = async () => {
    await instance.close();
    counter.disconnect();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

function job(workload, i) {
  if (workload === 'W3') {
    return {
      name: 'limited',
      data: { n: i, key: `k${i % keys}` },
      opts: { jobId: `w3-${i}`, removeOnComplete: true },
    };
  }
  return { name: 'noop', data: { n: i }, opts: { removeOnComplete: true } };
}

async function enqueue(workload, n) {
  const queue = new Queue(queueName, { connection: connection(), prefix });
  await queue.waitUntilReady();
  const wall = process.hrtime.bigint();
  const cpu = process.cpuUsage();
  for (let start = 0; start < n; start += chunk) {
    const jobs = [];
    for (let i = start; i < Math.min(n, start + chunk); i++) {
      jobs.push(job(workload, i));
    }
    await queue.addBulk(jobs);
  }
  const seconds = Number(process.hrtime.bigint() - wall) / 1e9;
  const used = process.cpuUsage(cpu);
  const queued = await queue.getWaitingCount();
  await queue.close();
  const line = {
    seconds,
    cpu_seconds: (used.user + used.system) / 1e6,
    queued,
    api: `addBulk, ${chunk} jobs a call`,
  };
  console.log(JSON.stringify(line));
}

const [command, workload, n] = process.argv.slice(2);
if (command === 'worker') {
  worker(env.BENCH_WORKLOAD);
} else if (command === 'enqueue' && ['W1', 'W2', 'W3'].includes(workload)) {
  enqueue(workload, Number(n)).then(
    () => process.exit(0),
    (error) => {
      console.error(error);
      process.exit(1);
    },
  );
} else {
  console.error('usage: node bullmq_peer.cjs worker | enqueue W1|W2|W3 N');
  process.exit(2);
}
