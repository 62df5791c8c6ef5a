"""A tiny random-weight Llama and a byte-level tokenizer, built offline.

The KV-tier tests need a model vLLM can serve on a CPU without a model
hub: 2 layers, 2 KV heads of 64, float32, vocabulary 512. One 128-token
KV block of it is 2 layers x (K, V) x 2 heads x 64 x 4 bytes x 128 =
262,144 bytes. Weights are drawn with a large initializer range (0.3), so
greedy decoding does not settle on one repeated token and equal outputs
of two runs say something.

Run as a script (with the KV venv's python): ``tiny_model.py DIR`` builds
the model in DIR, unless DIR already holds a complete one.
"""

import os
import random
import sys

VOCAB = 512
BLOCK_TOKENS = 128
# One KV block of the model (see above).
BLOCK_BYTES = 2 * 2 * 2 * 64 * 4 * BLOCK_TOKENS

_WORDS = ("swap tensor block cache page drive store key value layer head "
          "token prefix offload tier read write queue ring batch commit "
          "namespace checksum eviction capacity stripe engine thread").split()


def corpus(seed=1, words=20000):
    """Deterministic training text for the tokenizer."""
    rng = random.Random(seed)
    out = []
    for _ in range(words):
        w = rng.choice(_WORDS)
        if rng.random() < 0.2:
            w = w.capitalize()
        if rng.random() < 0.1:
            w += str(rng.randrange(1000))
        out.append(w)
    return " ".join(out)


def build(path, seed=0):
    """Writes the model and tokenizer to PATH (a directory)."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from tokenizers import trainers
    from transformers import LlamaConfig, LlamaForCausalLM
    from transformers import PreTrainedTokenizerFast

    os.makedirs(path, exist_ok=True)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB, special_tokens=["<s>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator([corpus()], trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>",
                                   eos_token="</s>")
    fast.save_pretrained(path)

    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=VOCAB, hidden_size=256,
                      intermediate_size=512, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2,
                      head_dim=64, initializer_range=0.3,
                      max_position_embeddings=2048,
                      bos_token_id=0, eos_token_id=1,
                      tie_word_embeddings=False)
    model = LlamaForCausalLM(cfg)
    model.save_pretrained(path, safe_serialization=True)
    with open(os.path.join(path, ".complete"), "w") as f:
        f.write("ok\n")


def ensure(path):
    """Builds the model in PATH unless a complete one is there."""
    if not os.path.exists(os.path.join(path, ".complete")):
        build(path)
    return path


def prompt_ids(n_tokens, seed=7):
    """N_TOKENS token ids of a deterministic prompt (never the end token)."""
    rng = random.Random(seed)
    return [rng.randrange(2, VOCAB) for _ in range(n_tokens)]


if __name__ == "__main__":
    ensure(sys.argv[1])
