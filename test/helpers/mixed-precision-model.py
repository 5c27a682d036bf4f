"""A mixed-precision int8 model as the trainer's export makes it, for test/mixed-precision-runtime.test.ts.

CompactCNN (width 0.5, 150 Adam steps on 9,600 Fashion-MNIST training images, BN folded) on 300 test images, recipe from argv (JSON), the layers
named in argv kept in float. One float layer gets an outlier weight (x40 on one output channel), the reason
such a layer is kept in float: per-tensor 8-bit weights would round its other channels to a few levels.
Writes model.onnx, evalset.bin and model.refpred.bin (PyTorch's top-1) into the output folder.
Usage: python3 mixed-precision-model.py OUT_DIR RECIPE_JSON FLOAT_LAYER_INDEXES(comma, may be empty) OUTLIER_LAYER_INDEX(-1: none)
"""
import gzip, json, os, struct, sys
import numpy as np
import torch
from torch import nn

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', '..', 'control-plane', 'trainer'))
from edgefleet_trainer.data import Split  # noqa: E402
from edgefleet_trainer.distill import predict  # noqa: E402
from edgefleet_trainer.evalset import write_evalset, write_refpred  # noqa: E402
from edgefleet_trainer.export import export_onnx  # noqa: E402
from edgefleet_trainer.models import CompactCNN  # noqa: E402
from edgefleet_trainer.qat import calibrate, insert_fake_quant, layers, prepare  # noqa: E402
from edgefleet_trainer.spec import parse_recipe  # noqa: E402

out, recipe_json, float_idx, outlier_idx = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
torch.manual_seed(5)
torch.set_num_threads(1)


def idx(name: str) -> np.ndarray:
    with gzip.open('/usr/share/datasets/fashion-mnist/' + name) as f:
        d = f.read()
    return np.frombuffer(d[16:] if d[3] == 3 else d[8:], np.uint8)


x = idx('t10k-images-idx3-ubyte.gz').reshape(-1, 1, 28, 28)[:300].copy()
xt = torch.from_numpy(idx('train-images-idx3-ubyte.gz').reshape(-1, 1, 28, 28)[:9600].copy()).float() / 255.0
yt = torch.from_numpy(idx('train-labels-idx1-ubyte.gz')[:9600].astype(np.int64))
model = CompactCNN(width=0.5)
opt = torch.optim.Adam(model.parameters(), lr=3e-3)
model.train()
for step in range(150):  # a model whose predictions differ between samples; accuracy is beside the point
    i = (step * 64) % 9600
    loss = nn.functional.cross_entropy(model(xt[i:i + 64]), yt[i:i + 64])
    opt.zero_grad()
    loss.backward()
    opt.step()
model.eval()
recipe = parse_recipe(json.loads(recipe_json), 'recipe')
gm, _ = prepare(model, recipe, fold_bn_now=True)
names = [n for n, _ in layers(gm)]
if outlier_idx >= 0:  # -1: no outlier
    with torch.no_grad():
        dict(layers(gm))[names[outlier_idx]].weight[0].mul_(40.0)
floats = [names[int(i)] for i in float_idx.split(',') if i != '']
plan = insert_fake_quant(gm, recipe, floats)
xs = torch.from_numpy(x).float() / 255.0
calibrate(gm, [xs[:128], xs[128:256]])
export_onnx(gm, (1, 28, 28), os.path.join(out, 'model.onnx'), quantized=True)
split = Split(x, np.zeros(len(x), np.int64))
pred = predict(gm, split, torch.device('cpu'))
write_refpred(os.path.join(out, 'model.refpred.bin'), pred)
write_evalset(os.path.join(out, 'evalset.bin'), x, pred.astype(np.int64), 10)
print(json.dumps({'floatLayers': plan.float_layers, 'layers': names}))
