"""distdqn: distributed Ape-X-style Deep Q-Networks for text generation, on Ray and PyTorch."""

__version__ = "0.1.0"
