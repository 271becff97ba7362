"""The engine as a long-lived service: a local authenticated control socket and its protocol."""
