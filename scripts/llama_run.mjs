// llama_run.mjs -- runs a GGUF file in llama.cpp through node-llama-cpp, for
// scripts/llama_crosscheck.py (which installs node-llama-cpp and writes the job).
//
//   node scripts/llama_run.mjs NODE_DIR < job.json > result.json
//
// NODE_DIR holds node_modules/node-llama-cpp. The job (JSON):
//   model        the .gguf path
//   kvType       the KV cache's number type: "F32" (matches gpt.c's arithmetic) or "F16"
//                (llama.cpp's default)
//   greedy       [{prompt: [ids], n}]: each from a fresh context, the n tokens llama.cpp's
//                greedy sampler (temperature 0) picks after the prompt ids, fed as ids
//   tokenize     [text]: llama.cpp's token ids for each text (no BOS/EOS added)
//   bench        optional {prompt: [ids], n, repeats}: the same greedy generation repeated,
//                timed; one thread, as `gpt sample --threads 1`
// The result: {greedy: [[ids]], tokenize: [[ids]], bench: {tokens, seconds, tokensPerSecond}}.
import {readFileSync} from "node:fs";
import {join} from "node:path";
import {pathToFileURL} from "node:url";

const nodeDir = process.argv[2];
if (!nodeDir) {
    console.error("usage: node llama_run.mjs NODE_DIR < job.json");
    process.exit(2);
}
const {getLlama, LlamaLogLevel} = await import(
    pathToFileURL(join(nodeDir, "node_modules", "node-llama-cpp", "dist", "index.js")).href);
const job = JSON.parse(readFileSync(0, "utf8"));

// The prebuilt CPU binary only: no GPU probing, never a build from source.
const llama = await getLlama({gpu: false, build: "never", logLevel: LlamaLogLevel.error, maxThreads: 1});
const model = await llama.loadModel({modelPath: job.model, gpuLayers: 0});
const trainContext = model.fileInsights.trainContextSize;
const context = await model.createContext({
    contextSize: trainContext,
    batchSize: trainContext,
    threads: {ideal: 1, min: 1},
    flashAttention: false,
    experimentalKvCacheKeyType: job.kvType ?? "F32",
    experimentalKvCacheValueType: job.kvType ?? "F32",
});
const sequence = context.getSequence();

async function greedy(prompt, n) {
    if (prompt.length + n > trainContext)
        throw new Error(`${prompt.length} + ${n} tokens do not fit the model's context of ${trainContext}`);
    await sequence.clearHistory();
    const out = [];
    if (n === 0) return out;
    for await (const token of sequence.evaluate(prompt, {temperature: 0})) {
        out.push(token);
        if (out.length === n) break;
    }
    return out;
}

const result = {greedy: [], tokenize: [], nCtxTrain: trainContext};
for (const g of job.greedy ?? []) result.greedy.push(await greedy(g.prompt, g.n));
for (const text of job.tokenize ?? []) result.tokenize.push(Array.from(model.tokenize(text, false)));
if (job.bench) {
    const {prompt, n, repeats} = job.bench;
    await greedy(prompt, n);  // once untimed: first-use allocations
    const t0 = process.hrtime.bigint();
    let tokens = 0;
    for (let r = 0; r < repeats; r++) tokens += (await greedy(prompt, n)).length;
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    result.bench = {tokens, seconds, tokensPerSecond: tokens / seconds};
}
process.stdout.write(JSON.stringify(result) + "\n");
await context.dispose();
await model.dispose();
await llama.dispose();
