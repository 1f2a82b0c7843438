"""Holds the events service's use cases, one module per aggregate."""

from engagiert.events.services.honours import EventCreate, EventUpdate, Grant, Recognition, Reject

__all__ = ["EventCreate", "EventUpdate", "Grant", "Recognition", "Reject"]
