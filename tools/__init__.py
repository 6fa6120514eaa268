"""Developer tools: synthetic test media, a loopback MJPEG server, the GUI screenshot script."""
