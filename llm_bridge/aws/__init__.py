"""The AWS wire codecs the Bedrock provider needs, written with the standard library only (no botocore).

`sigv4` signs requests (Signature Version 4, header form); `eventstream` frames and unframes the
`application/vnd.amazon.eventstream` binary stream that ConverseStream answers with. Pure functions, no I/O.
"""
