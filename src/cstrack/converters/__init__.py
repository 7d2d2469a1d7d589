"""Foreign weights to checked safetensors files of cstrack's networks (`cstrack convert`).

- `unpickler`: reads the authors' pickled `.pt` checkpoints with a restricted unpickler that never
  imports or runs their code.
- `release`: converts such a checkpoint (`convert_checkpoint`), or ImageNet MobileNetV2 weights as
  a backbone (`convert_backbone`), to safetensors.
- `yolox_onnx`: initial weights from a released YOLOX-Nano ONNX graph (`convert_yolox_onnx`).

The modules are imported on their own (torch, and onnx for `yolox_onnx`, only when used).
"""
