"""`landgate init`: a first ./.landgate.yaml for the project in the current directory."""

from sandbox.setup.init import InitResult, detect_project, init_project, render_policy

__all__ = ["InitResult", "detect_project", "init_project", "render_policy"]
