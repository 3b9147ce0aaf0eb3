"""How the tests start moto: one boto3 session kept across mocks.

By default moto gives each mock a new boto3 session, and every client made from it loads its
service's model again: about 20 ms a client, a dozen clients a test. Each test still makes its own
clients (storage.aws.reset), so no handler or cache of one test reaches the next.
"""

MOTO_CONFIG = {"core": {"reset_boto3_session": False}}
