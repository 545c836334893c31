"""Where the bytes of a video come from: the URI policy, the readers behind it, and retries."""
