"""One small app per engine, run by ``edgeinfer demo <engine>`` (installed as edgeinfer.demos).

Each module ``demos/<engine>.py`` defines ``main(argv) -> int`` and runs on the engine's
built-in or generated sample data; an engine without a module here is "not built yet".
"""
