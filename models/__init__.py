"""The model registry (ONNX files + manifests) and training recipes.

Empty until the vision issue; training needs the optional ``[train]`` extra.
"""
