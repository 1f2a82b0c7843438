"""What every engagiert service needs once: contracts, envelope, topics, settings, logging, auth, messaging."""
