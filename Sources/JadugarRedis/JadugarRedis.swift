// The Redis adapter lands here (see the open issue).
