public enum JadugarPublisherPlaceholder {}
