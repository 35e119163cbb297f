"""Backend adapters. Each module imports its heavy library only when its class is built, so choosing one
backend never imports another."""
