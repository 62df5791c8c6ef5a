"""Runs vLLM on the tiny model against an LMCache cache server; JSON out.

Run with the KV venv's python, in a process of its own, with this
directory on PYTHONPATH (tiny_model):

    lmcache_engine_run.py SPEC.json OUT.json

SPEC: {"model": DIR, "port": N (the cache server's), "prompt_len": N,
"max_tokens": N, "steps": ["gen", "reset", "gen", ...]}. vLLM runs with
LMCacheMPConnector; "gen" generates greedily from the prompt, "reset"
empties vLLM's own prefix cache (not the cache server). OUT gets one entry
per "gen": the generated token ids, their logprobs and num_cached_tokens.
"""

import json
import os
import sys

os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", "nobind")
os.environ.setdefault("VLLM_NO_USAGE_STATS", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("LMCACHE_TRACK_USAGE", "false")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import tiny_model  # noqa: E402


def main():
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    from vllm import LLM, SamplingParams

    llm = LLM(model=spec["model"], dtype="float32", max_model_len=2048,
              enforce_eager=True, enable_prefix_caching=True, seed=0,
              kv_transfer_config={
                  "kv_connector": "LMCacheMPConnector",
                  "kv_role": "kv_both",
                  "kv_connector_extra_config": {
                      "lmcache.mp.host": "tcp://localhost",
                      "lmcache.mp.port": int(spec["port"])}})
    params = SamplingParams(temperature=0.0, max_tokens=spec["max_tokens"],
                            logprobs=1, ignore_eos=True)
    prompt = {"prompt_token_ids": tiny_model.prompt_ids(spec["prompt_len"])}
    results = []
    for step in spec["steps"]:
        if step == "reset":
            if not llm.reset_prefix_cache():
                raise RuntimeError("reset_prefix_cache failed")
            continue
        out = llm.generate([prompt], params, use_tqdm=False)[0]
        c = out.outputs[0]
        lps = [lp[tok].logprob for tok, lp in zip(c.token_ids, c.logprobs)]
        results.append({"tokens": list(c.token_ids), "logprobs": lps,
                        "num_cached_tokens": out.num_cached_tokens})
    with open(sys.argv[2], "w") as f:
        json.dump(results, f, indent=1)
    del llm


if __name__ == "__main__":
    main()
