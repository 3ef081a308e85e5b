// The columns of the tables of the suites that compare peers (peers, translate, threads), each
// defined once under its row key: [title, digits?] (bench/index.js prints numbers with `digits`
// decimals, 2 unless given).
const COLUMNS = {
  shape: ['shape'],
  peer: ['peer'],
  build: ['build'],
  dtype: ['dtype'],
  encoder_ms: ['encode ms', 2],
  ms_per_token: ['ms/token', 2],
  tokens_per_second: ['tok/s', 1],
  first_token_ms: ['first token ms', 0],
  peak_rss_mb: ['peak RSS MB', 0],
  note: ['note'],
  // peers: PyTorch's ids and logits, ours over a peer, runtime and model bytes
  ids_match: ['ids = PyTorch'],
  greedy_prefix: ['greedy prefix', 0],
  max_abs_logit_diff: ['max|dlogit|', 7],
  ours_over_peer_ms_per_token: ['ours/peer ms/tok', 2],
  ours_over_peer_tokens_per_second: ['ours/peer tok/s', 2],
  runtime_bytes: ['runtime B', 0],
  runtime_gzip_bytes: ['gzip B', 0],
  model_bytes: ['model B', 0],
  headline: ['ours / peer'],
  // translate
  model: ['model'],
  backend: ['backend'],
  search: ['search'],
  sentences_per_second: ['sentences/s', 2],
  download_mb: ['download MB', 1],
  identical: ['ids = transformers'],
  // threads: the count asked for and the count running at the end, CPU time over wall time, against 1 thread
  threads: ['threads', 0],
  threads_running: ['ran', 0],
  cores_busy: ['cpu/wall', 2],
  vs_1_thread_encoder: ['x1 encode', 2],
  vs_1_thread_token: ['x1 ms/tok', 2],
  identical_to_1_thread: ['same as 1 thread'],
  // A targets table: what a ratio measures, the ratio, the goal for it, whether this run met it.
  target: ['target'],
  ratio: ['ratio', 2],
  goal: ['goal'],
  met: ['met'],
};

/** The columns of `keys` as bench/index.js takes them ({ key, title, digits? }), in that order. */
export function pick(...keys) {
  return keys.map((key) => {
    if (!COLUMNS[key]) throw new Error(`bench/columns.js has no column ${key}`);
    const [title, digits] = COLUMNS[key];
    return { key, title, ...(digits === undefined ? {} : { digits }) };
  });
}
