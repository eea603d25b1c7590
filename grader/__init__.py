"""backend-katas grader: discover -> workspace -> run -> score -> report."""

__version__ = "0.1.0"
