"""PyTorch peer of `seqrnn bench lm --int8` and `seqrnn bench run --model RUN`: evaluation and
batch-1 generation of a word-level LSTM/GRU language model (Embedding -> LSTM/GRU -> Linear), in
f32 and with PyTorch's dynamic quantization (`torch.ao.quantization.quantize_dynamic`, qint8
weights per tensor for nn.LSTM/nn.GRU and nn.Linear, activations quantized on the fly), as in
PyTorch's "dynamic quantization of an LSTM word language model" tutorial.

Weights: random (uniform +-0.1, as `seqrnn bench lm`), or those of a seqrnn language-model run
(`--model RUN`: RUN/model.safetensors has PyTorch word_language_model names, encoder.weight,
rnn.weight_ih_l0..., decoder.weight/bias; RUN/config.json gives the cell and sizes).

Evaluation: `--steps` windows of T x B tokens (after 5 untimed ones), state carried, on random
tokens, or on the PTB split `--split` of `--data DIR` (then the perplexity over those windows is
printed too, to set beside `seqrnn eval`). Generation: 500 tokens at batch 1 from token 0,
sampling at temperature 0.8. Prints one JSON object.

Usage:
  python torch_int8.py --cell lstm --hidden 200 --layers 2 --vocab 10000 --threads 2 [--steps 100]
  python torch_int8.py --model RUN [--data DIR --split valid] --threads 2
"""
import argparse, json, math, os, re, struct, time
import torch, torch.nn as nn

p = argparse.ArgumentParser()
p.add_argument('--cell', default='lstm'); p.add_argument('--hidden', type=int, default=200)
p.add_argument('--layers', type=int, default=2); p.add_argument('--vocab', type=int, default=10000)
p.add_argument('--batch', type=int, default=20); p.add_argument('--bptt', type=int, default=35)
p.add_argument('--steps', type=int, default=100); p.add_argument('--threads', type=int, default=2)
p.add_argument('--tokens', type=int, default=500); p.add_argument('--model', default=None)
p.add_argument('--data', default=None); p.add_argument('--split', default='valid')
a = p.parse_args()
torch.set_num_threads(a.threads); torch.manual_seed(0)


def read_safetensors(path):
    with open(path, 'rb') as f:
        raw = f.read()
    n = struct.unpack('<Q', raw[:8])[0]
    header = json.loads(raw[8:8 + n]); body = raw[8 + n:]
    out = {}
    for name, t in header.items():
        if name == '__metadata__':
            continue
        s, e = t['data_offsets']
        dtype = {'F32': torch.float32, 'I8': torch.int8}[t['dtype']]
        out[name] = torch.frombuffer(bytearray(body[s:e]), dtype=dtype).reshape(t['shape'])
    return out


vocab_words = None
if a.model:
    cfg = json.load(open(os.path.join(a.model, 'config.json')))['model']
    a.cell, a.hidden, a.layers, a.vocab = cfg['cell'], cfg['hidden'], cfg['layers'], cfg['vocab']
    embed = cfg['embed']
    # vocab.txt escapes a backslash as `\\` and a newline as `\n` (seqrnn::data::vocab).
    unescape = lambda t: re.sub(r'\\(.)', lambda m: '\n' if m.group(1) == 'n' else m.group(1), t)
    vocab_words = [unescape(t) for t in open(os.path.join(a.model, 'vocab.txt'), encoding='utf-8').read().split('\n')[:a.vocab]]
else:
    embed = a.hidden


class LM(nn.Module):
    def __init__(s):
        super().__init__()
        s.encoder = nn.Embedding(a.vocab, embed)
        s.rnn = (nn.LSTM if a.cell == 'lstm' else nn.GRU)(embed, a.hidden, a.layers)
        s.decoder = nn.Linear(a.hidden, a.vocab)
        for w in s.parameters():
            nn.init.uniform_(w, -0.1, 0.1)

    def forward(s, x, h):
        y, h = s.rnn(s.encoder(x), h)
        return s.decoder(y), h


m = LM().eval()
if a.model:
    st = read_safetensors(os.path.join(a.model, 'model.safetensors'))
    if any(v.dtype == torch.int8 for v in st.values()):
        raise SystemExit('give the f32 run: this script quantizes it the PyTorch way')
    m.load_state_dict({k: v for k, v in st.items() if k in m.state_dict()})

if a.data:
    ids = {w: i for i, w in enumerate(vocab_words)} if vocab_words else None
    toks = []
    for line in open(os.path.join(a.data, f'ptb.{a.split}.txt')):
        toks += [ids[w] for w in line.split() + ['<eos>']]
    stream = torch.tensor(toks, dtype=torch.long)
else:
    g = torch.Generator().manual_seed(4)
    stream = torch.randint(0, a.vocab, ((a.steps + 5) * a.bptt * a.batch + a.batch,), generator=g)
n = stream.size(0) // a.batch
data = stream[:n * a.batch].view(a.batch, n).t().contiguous()


@torch.no_grad()
def evaluate(model):
    h = None; windows = list(range(0, data.size(0) - 1, a.bptt))
    if not a.data:
        windows = windows[:a.steps + 5]
    tot, cnt, timed, t0 = 0.0, 0, 0, None
    for k, i in enumerate(windows):
        if k == 5 and not a.data:
            t0 = time.perf_counter()
        if k == 0 and a.data:
            t0 = time.perf_counter()
        sl = min(a.bptt, data.size(0) - 1 - i)
        out, h = model(data[i:i + sl], h)
        loss = nn.functional.cross_entropy(out.view(-1, a.vocab), data[i + 1:i + 1 + sl].reshape(-1), reduction='sum')
        if t0 is not None:
            tot += loss.item(); cnt += sl * a.batch; timed += 1
    return cnt / (time.perf_counter() - t0), tot / cnt


@torch.no_grad()
def generate(model, n):
    x = torch.zeros(1, 1, dtype=torch.long); h = None
    for _ in range(n):
        y, h = model(x, h)
        x = torch.multinomial(torch.softmax(y[-1] / 0.8, dim=-1), 1).view(1, 1)


def figures(model):
    tps, loss = evaluate(model)
    generate(model, 20)
    t = time.perf_counter(); generate(model, a.tokens)
    ms = 1000 * (time.perf_counter() - t) / a.tokens
    r = dict(eval_tokens_per_s=round(tps), eval_loss=round(loss, 5), generate_ms_per_token=round(ms, 4))
    if a.data:
        r['ppl'] = round(math.exp(loss), 3)
    return r


f32 = figures(m)
q = torch.ao.quantization.quantize_dynamic(m, {nn.LSTM, nn.GRU, nn.Linear}, dtype=torch.qint8)
int8 = figures(q)
print(json.dumps(dict(peer='pytorch', torch=torch.__version__, engine=torch.backends.quantized.engine,
                      cell=a.cell, hidden=a.hidden, layers=a.layers, vocab=a.vocab, batch=a.batch,
                      bptt=a.bptt, threads=a.threads, model=a.model, split=a.split if a.data else None,
                      f32=f32, int8=int8)))
