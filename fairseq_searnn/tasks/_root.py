"""The whole fairseq config a task's own config belongs to."""


def root_option(cfg, name):
    """``name`` of the whole fairseq config ``cfg`` belongs to (omegaconf keeps the parent of
    the task node), or None when the task was built from a detached config."""
    try:
        root = cfg._get_root()
    except AttributeError:
        return None
    return root.get(name) if root is not cfg and hasattr(root, "get") else None
