"""The reference model: a small sentence-conditioned U-Net, trained from scratch on a rendered
dataset (`clevr-remv train`), and its masks in the predictions file that `evaluate` scores
(`clevr-remv predict`).

It exists to answer what a benchmark release must: is the data learnable, can a model solve it
without reading the sentence (the text-blind control, `--text none`), and what figures should a
user expect. The room needs PyTorch (`pip install 'clevr-remv[train]'`); nothing outside it imports
torch, and `runtime.require_torch` says in one line what to install where it is missing.

    tokens.py     the sentence's words as ids (the vocabulary is the train split's words)
    network.py    the U-Net whose blocks are modulated by the sentence (FiLM)
    samples.py    RefDataset's samples as tensors at the training size
    checkpoint.py the run folder: config.json, log.jsonl, last.pt and best.pt, written atomically
    training.py   the training loop: deterministic order, validation, resume after any stop
    prediction.py masks for every (pair, view), streamed into a predictions file
    runtime.py    torch present?, which device, deterministic settings
"""
