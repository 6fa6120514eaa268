"""The PyQt5 desktop app. The only package of the project that imports Qt."""
