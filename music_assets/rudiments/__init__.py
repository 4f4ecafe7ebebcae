"""Drum rudiments as data: definitions, simulated players, performances, MIDI, labels, scores."""
