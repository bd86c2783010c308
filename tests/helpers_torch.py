"""Torch-side references that several test modules share: torchvision and
akamaster nets written out with torch (torch CPU is a test extra; each
skips where torch is missing), and random state dicts with their key names."""

import re

import numpy as np
import pytest

import keras_resnet


def torchvision_state_dict(depth, classes=1000, seed=0):
    """A random state dict with torchvision's exact key names and shapes."""
    rng = np.random.default_rng(seed)
    block, layout = keras_resnet.specs.IMAGENET_BLOCKS[depth]
    expansion = 4 if block == "bottleneck" else 1
    state = {}

    def conv(key, out, inp, k):
        fan_in = inp * k * k
        state[key + ".weight"] = rng.normal(0, np.sqrt(2 / fan_in), (out, inp, k, k)).astype("float32")

    def bn(key, n, scale=1.0):
        state[key + ".weight"] = (rng.uniform(0.5, 1.5, n) * scale).astype("float32")
        state[key + ".bias"] = rng.normal(0, 0.1, n).astype("float32")
        state[key + ".running_mean"] = rng.normal(0, 0.5, n).astype("float32")
        state[key + ".running_var"] = rng.uniform(0.5, 2.0, n).astype("float32")
        state[key + ".num_batches_tracked"] = np.array(7, dtype="int64")

    conv("conv1", 64, 3, 7)
    bn("bn1", 64)
    inp = 64
    for s, (filters, blocks) in enumerate(zip((64, 128, 256, 512), layout)):
        for b in range(blocks):
            p = f"layer{s + 1}.{b}"
            if block == "bottleneck":
                conv(p + ".conv1", filters, inp, 1), bn(p + ".bn1", filters)
                conv(p + ".conv2", filters, filters, 3), bn(p + ".bn2", filters)
                conv(p + ".conv3", filters * 4, filters, 1), bn(p + ".bn3", filters * 4, 0.3)
            else:
                conv(p + ".conv1", filters, inp, 3), bn(p + ".bn1", filters)
                conv(p + ".conv2", filters, filters, 3), bn(p + ".bn2", filters, 0.3)
            if b == 0 and (s > 0 or inp != filters * expansion):
                conv(p + ".downsample.0", filters * expansion, inp, 1)
                bn(p + ".downsample.1", filters * expansion)
            inp = filters * expansion
    state["fc.weight"] = rng.normal(0, 0.05, (classes, inp)).astype("float32")
    state["fc.bias"] = rng.normal(0, 0.05, classes).astype("float32")
    return state


def torch_reference(state, images, include_top=True, stride_in_3x3=True):
    """torchvision's ResNet forward pass, written from its source with
    torch.nn.functional on the state dict (torchvision is not installed)."""
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    t = {k: torch.from_numpy(np.asarray(v)) for k, v in state.items()}
    x = torch.from_numpy(images).permute(0, 3, 1, 2)

    def bn(x, key):
        return F.batch_norm(x, t[key + ".running_mean"], t[key + ".running_var"],
                            t[key + ".weight"], t[key + ".bias"], False, 0.0, 1e-5)

    def conv(x, key, stride=1):
        w = t[key + ".weight"]
        return F.conv2d(x, w, stride=stride, padding=w.shape[-1] // 2)

    with torch.no_grad():
        x = F.relu(bn(conv(x, "conv1", 2), "bn1"))
        x = F.max_pool2d(x, 3, 2, 1)
        blocks = sorted({tuple(map(int, m.groups())) for k in state
                         if (m := re.match(r"layer(\d)\.(\d+)\.", k))})
        for s, b in blocks:
            p = f"layer{s}.{b}"
            stride = 2 if s > 1 and b == 0 else 1
            identity = x
            if p + ".conv3.weight" in state:
                s1, s3 = (1, stride) if stride_in_3x3 else (stride, 1)
                y = F.relu(bn(conv(x, p + ".conv1", s1), p + ".bn1"))
                y = F.relu(bn(conv(y, p + ".conv2", s3), p + ".bn2"))
                y = bn(conv(y, p + ".conv3"), p + ".bn3")
            else:
                y = F.relu(bn(conv(x, p + ".conv1", stride), p + ".bn1"))
                y = bn(conv(y, p + ".conv2"), p + ".bn2")
            if p + ".downsample.0.weight" in state:
                identity = bn(conv(x, p + ".downsample.0", stride), p + ".downsample.1")
            x = F.relu(y + identity)
        if not include_top:
            return x.permute(0, 2, 3, 1).numpy()
        x = x.mean(dim=(2, 3))
        return F.linear(x, t["fc.weight"], t["fc.bias"]).numpy()


def akamaster_reference(depth, classes=10):
    """akamaster/pytorch_resnet_cifar10's CIFAR ResNet as a torch module.

    Written here from that project's description (conv-BN-ReLU stem with 16
    filters; three stages of n basic blocks with 16/32/64 filters; option A
    shortcut `F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, planes // 4, planes //
    4))`, i.e. zero channels on both sides; global average pool; `linear`),
    with its module names, so that its state dicts load with strict=True.
    """
    torch = pytest.importorskip("torch")
    nn, F = torch.nn, torch.nn.functional

    class Block(nn.Module):
        def __init__(self, inp, planes, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(inp, planes, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(planes)
            self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(planes)
            self.pad = planes // 4 if stride != 1 or inp != planes else None

        def forward(self, x):
            out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
            if self.pad is not None:
                x = F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad, self.pad))
            return F.relu(out + x)

    class Net(nn.Module):
        def __init__(self, n):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(16)
            inp, stages = 16, []
            for planes, stride in ((16, 1), (32, 2), (64, 2)):
                blocks = []
                for i in range(n):
                    blocks.append(Block(inp, planes, stride if i == 0 else 1))
                    inp = planes
                stages.append(nn.Sequential(*blocks))
            self.layer1, self.layer2, self.layer3 = stages
            self.linear = nn.Linear(64, classes)

        def forward(self, x):
            x = F.relu(self.bn1(self.conv1(x)))
            x = self.layer3(self.layer2(self.layer1(x)))
            return self.linear(F.avg_pool2d(x, x.shape[3]).flatten(1))

    return Net((depth - 2) // 6).eval()


def akamaster_logits(net, images):
    """The torch net's logits for NHWC float32 images (already normalised)."""
    torch = pytest.importorskip("torch")
    with torch.no_grad():
        return net(torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()).numpy()
