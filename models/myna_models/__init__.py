"""On-device face matching (YuNet + SFace through onnxruntime) and its model manifest."""
