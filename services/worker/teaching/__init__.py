"""The teaching assistant's model work (issue 20): 立意 angles, 素材 picks and 教案, on the gpu queue."""
